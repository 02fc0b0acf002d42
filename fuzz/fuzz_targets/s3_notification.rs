//! S3 notifications as SQS delivers them: any body parses or is refused (never a panic),
//! and any key survives the encoding S3 (or moto) applies in a notification.
#![no_main]

use landfall_s3_events::{decode_key, parse, Notification};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Notification::Changes(changes)) = parse(text) {
        assert!(!changes.is_empty(), "a notification of no change");
    }
    // Every byte but letters and digits encoded: `/` as moto writes it (%2F), space as
    // %20, `+` as %2B — the key must come back as it was.
    let encoded = utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
    assert_eq!(decode_key(&encoded).ok().as_deref(), Some(text));
    // AWS's form: space as `+`.
    let form = encoded.replace("%20", "+");
    assert_eq!(decode_key(&form).ok().as_deref(), Some(text));
});
