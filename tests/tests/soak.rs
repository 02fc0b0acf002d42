//! The whole system under load and faults (`landfall_tests::soak`): every pipeline at once,
//! redeliveries, killed processes, cut connections, restarted databases, moto failing and
//! throttling; then every input reconciled against its target. `make test` runs it for
//! `SOAK_SECONDS` (60 by default); `make soak` for ten minutes.

use anyhow::Result;
use landfall_tests::soak::{run, Settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_input_lands_exactly_once_through_faults() -> Result<()> {
    let report = run(Settings::from_env(60)).await?;
    println!("{report}");
    assert!(report.clean(), "{report}");
    assert!(
        report.faults.counts.len() >= 7,
        "every kind of fault should have been injected: {report}"
    );
    Ok(())
}
