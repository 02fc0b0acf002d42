//! The load library run directly, where one host cannot: many deliveries at once in many
//! execution environments, and an invocation that runs out of time.

use anyhow::Result;
use landfall_devstack::sample::orders_csv;
use landfall_orders_load::audit::Received;
use landfall_orders_load::warehouse::{OrdersWarehouse, UnknownCustomers};
use landfall_orders_load::{Done, LoadError};
use landfall_runtime::{Classify, Disposition};
use landfall_tests::file_pipeline::orders::{deadline, fixture, BUCKET, CUSTOMERS};

#[tokio::test]
async fn many_files_delivered_at_once_and_twice_each_load_exactly_once() -> Result<()> {
    let mut f = fixture().await?;
    f.migrated().await?;
    let loader = f.loader(UnknownCustomers::Load, 5);
    let mut files = Vec::new();
    for n in 0..6u32 {
        let key = format!("transformed/orders/many/{n}.csv");
        // Overlapping orders (n*3 .. n*3+5), each file a newer revision; one unknown customer each.
        let mut body = orders_csv(n * 3..n * 3 + 5, CUSTOMERS, n);
        body.push_str(&format!("U{n},C9999,2026-11-01 00:00:00,placed,1.00,GBP\n"));
        let version = f.stack.put(BUCKET, &key, body.into_bytes()).await?;
        files.push((key, version));
    }
    let deliveries: Vec<Received> = files
        .iter()
        .flat_map(|(key, version)| {
            ["m1/1", "m2/1"].map(|d| {
                let mut r = f.received(key, version, &format!("{key}/{d}"));
                r.size = 400;
                r
            })
        })
        .collect();
    let within = deadline(120);
    let loads = deliveries.iter().map(|r| loader.load(r, &within));
    let outcomes = futures::future::join_all(loads).await;
    for outcome in &outcomes {
        assert!(matches!(outcome, Ok(Done::Loaded(_))), "{outcome:?}");
    }
    let rows = f.final_rows().await?;
    // Orders 0..20 and six unknown-customer orders, each once; the newest revision wins.
    assert_eq!(rows.len(), 20 + 6);
    assert!(
        rows["O0000003"].1.ends_with("many/1.csv"),
        "{:?}",
        rows["O0000003"]
    );
    assert!(rows["O0000019"].1.ends_with("many/5.csv"));
    assert_eq!(f.count("SELECT count(*) FROM orders_ledger").await?, 6);
    assert_eq!(
        f.count("SELECT count(*) FROM orders_enriched WHERE customer_name IS NULL")
            .await?,
        6
    );
    assert_eq!(
        f.count("SELECT sum(unknown_customers)::bigint FROM orders_ledger")
            .await?,
        6
    );
    assert_eq!(f.count("SELECT count(*) FROM orders_staging").await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_load_that_runs_out_of_time_is_followed_by_its_redelivery_not_repeated() -> Result<()> {
    let mut f = fixture().await?;
    f.migrated().await?;
    let key = "transformed/orders/slow.csv";
    let version = f
        .stack
        .put(BUCKET, key, orders_csv(0..4, CUSTOMERS, 0).into_bytes())
        .await?;
    let file = f.received(key, &version, "m/1");

    // Not enough time for the warehouse step: it is not started at all.
    let patient = f.loader(UnknownCustomers::Reject, 10_000);
    let err = patient.load(&file, &deadline(120)).await.unwrap_err();
    assert_eq!(err.disposition(), Disposition::Retryable);
    assert!(
        err.to_string().contains("not starting the warehouse load"),
        "{err}"
    );
    assert!(f
        .warehouse()
        .list(&OrdersWarehouse::statement_name(key, &version))
        .await?
        .is_empty());

    // Started, but held up (a person holds staging) past the invocation's time.
    let mut holder = f.sql().await?;
    sqlx::raw_sql("BEGIN; LOCK orders_staging")
        .execute(&mut holder)
        .await?;
    let loader = f.loader(UnknownCustomers::Reject, 1);
    let err = loader.load(&file, &deadline(23)).await.unwrap_err();
    let LoadError::Warehouse(ref inner) = err else {
        panic!("{err}")
    };
    let running = inner.still_running().expect("still running").to_owned();
    let failure = err.to_function_error(&loader.settings, file.size);
    assert_eq!(failure.disposition, Disposition::Retryable);
    assert!(failure.retry_after.is_some());

    // A redelivery while it still waits adopts the running statement instead of
    // submitting the load again.
    let err = loader.load(&file, &deadline(23)).await.unwrap_err();
    let LoadError::Warehouse(ref inner) = err else {
        panic!("{err}")
    };
    assert_eq!(inner.still_running(), Some(running.as_str()));

    // The lock goes; the transaction commits once, and the next delivery finds it done.
    sqlx::raw_sql("COMMIT").execute(&mut holder).await?;
    let done = loader.load(&file, &deadline(120)).await?;
    let Done::Loaded(loaded) = done else {
        panic!("{done:?}")
    };
    assert_eq!(loaded.ledger.rows_loaded, 4);
    assert_eq!(
        f.warehouse()
            .list(&OrdersWarehouse::statement_name(key, &version))
            .await?
            .len(),
        1
    );
    assert_eq!(f.final_rows().await?.len(), 4);
    Ok(())
}
