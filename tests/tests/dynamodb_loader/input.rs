//! What a file may hold: bad input is refused before any import, with the current table
//! kept; ordinary text, as people type it, imports exactly.

use super::imported;
use anyhow::Result;
use landfall_tests::file_pipeline::dynamodb::{
    csv, datasets_file, expected, items, pointer, stack, tables, FIRST, FUNCTION, HEADER,
};

#[tokio::test]
async fn bad_input_is_refused_before_any_import_and_the_current_table_stays() -> Result<()> {
    let datasets = datasets_file(3600, "versioned");
    let mut stack = stack(&datasets).await?;
    stack
        .put(
            "LandingBucket",
            "dynamodb/price_index/good.csv",
            csv(FIRST).into_bytes(),
        )
        .await?;
    assert!(stack.deliver(FUNCTION).await?.failed.is_empty());
    let current = pointer(&stack).await?.expect("a current table");

    let row = "2024-01,Canada,Food,Bread,g,1\n";
    let digits39 = "123456789012345678901234567890123456789";
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "number.csv",
            format!("{HEADER}{row}2024-01,Canada,Food,Milk,g,\"12,34x\"\n").into_bytes(),
            "number.csv: line 3, column 6 (price): \"12,34x\" is not a number".into(),
        ),
        (
            "digits.csv",
            format!("{HEADER}{row}2024-01,Canada,Food,Milk,g,{digits39}\n").into_bytes(),
            "line 3, column 6 (price): ".to_owned()
                + &format!("\"{digits39}\" has 39 significant digits"),
        ),
        (
            "columns.csv",
            format!("{HEADER}{row}2024-01,Canada,Food,Milk,1\n").into_bytes(),
            "columns.csv: line 3: expected 6 columns, found 5".into(),
        ),
        (
            "quote.csv",
            format!("{HEADER}{row}2024-01,Canada,\"Food,Milk,g,1\n").into_bytes(),
            "quote.csv: line 3: a quoted field is never closed".into(),
        ),
        (
            "key.csv",
            format!("{HEADER}{row}2024-01,,Food,Milk,g,1\n").into_bytes(),
            "key.csv: line 3, column 2 (geo): missing key value".into(),
        ),
        (
            "duplicate.csv",
            format!("{HEADER}{row}2024-02,Canada,Food,Milk,g,1\n{row}").into_bytes(),
            "duplicate.csv: line 4: the same key (ref_date, geo, product) as line 2".into(),
        ),
        (
            "header.csv",
            HEADER.as_bytes().to_vec(),
            "header.csv: line 2: the file has a header but no data rows".into(),
        ),
        (
            "empty.csv",
            Vec::new(),
            "empty.csv: line 1: the file is empty".into(),
        ),
        (
            "bytes.csv",
            [
                format!("{HEADER}2024-01,Canada,Food,Br").into_bytes(),
                b"\xc3\x28ad,g,1\n".to_vec(),
            ]
            .concat(),
            "bytes.csv: line 2, column 4 (product): invalid UTF-8".into(),
        ),
        (
            "big.csv",
            format!(
                "{HEADER}2024-01,Canada,{},Bread,g,1\n",
                "x".repeat(401 * 1024)
            )
            .into_bytes(),
            "big.csv: line 2: the item would be".into(),
        ),
    ];
    for (file, body, reason) in &cases {
        let key = format!("dynamodb/price_index/{file}");
        stack.put("LandingBucket", &key, body.clone()).await?;
        let delivery = stack.deliver(FUNCTION).await?;
        assert_eq!(
            delivery.failed.len(),
            0,
            "dead-lettered, not retried: {delivery:?}"
        );
        let reasons = stack.dead_letter_reasons("DynamodbFilesDLQ").await?;
        assert!(
            reasons.iter().any(|r| r.contains(reason.as_str())),
            "{file}: expected {reason:?} in {reasons:#?}"
        );
        assert_eq!(
            pointer(&stack).await?.as_deref(),
            Some(current.as_str()),
            "{file}"
        );
        // One reason on the DLQ at a time: a peek sees at most ten messages.
        let dlq = stack.resource("DynamodbFilesDLQ");
        let received = stack
            .sqs()
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .send()
            .await?;
        for message in received.messages() {
            let receipt = message.receipt_handle().unwrap_or_default();
            stack
                .sqs()
                .delete_message()
                .queue_url(&dlq)
                .receipt_handle(receipt)
                .send()
                .await?;
        }
        assert_eq!(
            tables(&stack).await?,
            vec![current.clone()],
            "{file}: no import started"
        );
        let landing = stack.keys(&stack.resource("LandingBucket"), &key).await?;
        assert_eq!(landing, vec![key.clone()], "{file} stays in landing");
    }
    assert_eq!(items(&stack, &current).await?, expected(FIRST));
    // The dataset's people hear of each refusal, with the reason.
    let emails = stack.sent_emails().await?;
    let (_, _, body) = emails
        .iter()
        .find(|(_, subject, _)| {
            subject == "[landfall] FAILED price_index: dynamodb/price_index/key.csv"
        })
        .expect("a failure email");
    assert!(
        body.contains("line 3, column 2 (geo): missing key value")
            && body.contains("the current table is unchanged"),
        "{body}"
    );

    Ok(())
}

/// Ordinary text, as people type it, imports exactly: quotes, apostrophes, backslashes,
/// newlines inside a quoted field, emoji and CJK. (moto's own ImportTable reader cut strings
/// at `'` and `\"`, so such a 3,000-row file imported short; the local stack corrects it in
/// `tools/moto/server.py`, as AWS reads standard DynamoDB JSON.)
#[tokio::test]
async fn text_with_quotes_backslashes_newlines_emoji_and_cjk_imports_exactly() -> Result<()> {
    let datasets = datasets_file(2, "versioned");
    let mut stack = stack(&datasets).await?;
    let hard = [
        "She said \"hi\"",
        "it's",
        "back\\slash",
        "a \\\" pair",
        "two\nlines",
        "emoji 😀🥖",
        "価格 指数",
        "tab\there, comma",
    ];
    let rows: Vec<[String; 6]> = (0..3000)
        .map(|i| {
            [
                format!("2024-{:02}", i % 12 + 1),
                hard[i % hard.len()].to_owned(),
                "Food".to_owned(),
                format!("Item {i} {}", hard[(i / 8) % hard.len()]),
                hard[(i / 3) % hard.len()].to_owned(),
                format!("{}.{:02}", i % 50, i % 100),
            ]
        })
        .collect();
    let borrowed: Vec<[&str; 6]> = rows
        .iter()
        .map(|row| std::array::from_fn(|i| row[i].as_str()))
        .collect();
    let table = imported(&mut stack, "dynamodb/price_index/text.csv", csv(&borrowed)).await?;
    let items = items(&stack, &table).await?;
    assert_eq!(items.len(), 3000);
    assert_eq!(items, expected(&borrowed));
    Ok(())
}
