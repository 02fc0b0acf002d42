//! db-init's `.sql` splitter: any script splits into statements or is refused naming a line
//! (never a panic); statements come in order, each non-empty, each on a line of the script.
#![no_main]

use landfall_sql_script::split;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(script) = std::str::from_utf8(data) else {
        return;
    };
    let lines = script.split(['\n']).count();
    if let Ok(statements) = split(script) {
        let mut last = 1;
        for statement in statements {
            assert!(!statement.sql.trim().is_empty(), "an empty statement");
            assert!(
                statement.line >= last && statement.line <= lines,
                "{statement:?}"
            );
            last = statement.line;
        }
    }
});
