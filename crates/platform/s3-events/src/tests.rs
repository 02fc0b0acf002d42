use super::*;

const AWS_PUT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-2",
  "eventTime":"2026-11-22T10:00:00.000Z","eventName":"ObjectCreated:Put",
  "userIdentity":{"principalId":"AWS:EXAMPLE"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},
  "responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},
  "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"site","ownerIdentity":{"principalId":"P"},"arn":"arn:aws:s3:::site"},
  "object":{"key":"docs/a+b%2Bc/caf%C3%A9.html","size":12,"eTag":"0123abcd","versionId":"v1","sequencer":"0055AED6DCD90281E5"}}}]}"#;

// moto: no userIdentity, requestParameters or sequencer; '/' encoded as %2F; quote_plus.
const MOTO_PUT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
  "eventTime":"2026-11-22T10:00:00.000Z","eventName":"ObjectCreated:Put",
  "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"site","arn":"arn:aws:s3:::site"},
  "object":{"key":"docs%2Fa+b%2Bc%2Fcaf%C3%A9.html","size":12,"eTag":"0123abcd"}}}]}"#;

fn only_change(body: &str) -> ObjectChange {
    match parse(body).unwrap() {
        Notification::Changes(mut changes) => {
            assert_eq!(changes.len(), 1);
            changes.remove(0)
        }
        other => panic!("expected changes, got {other:?}"),
    }
}

#[test]
fn aws_and_moto_shapes_decode_to_the_same_key() {
    let aws = only_change(AWS_PUT);
    let moto = only_change(MOTO_PUT);
    assert_eq!(aws.key, "docs/a b+c/café.html");
    assert_eq!(moto.key, aws.key);
    assert_eq!(aws.kind, ChangeKind::Created);
    assert_eq!(aws.bucket, "site");
    assert_eq!(aws.version_id.as_deref(), Some("v1"));
    assert_eq!(aws.sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    assert_eq!(moto.sequencer, None);
    assert_eq!(moto.size, Some(12));
}

#[test]
fn test_event_is_recognised() {
    let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-22T10:00:00.000Z","Bucket":"site","RequestId":"R","HostId":"H"}"#;
    assert_eq!(
        parse(body).unwrap(),
        Notification::Test {
            bucket: Some("site".into())
        }
    );
}

#[test]
fn removals_and_expirations_are_removed() {
    for name in [
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
        "LifecycleExpiration:Delete",
    ] {
        let body = MOTO_PUT.replace("ObjectCreated:Put", name);
        assert_eq!(only_change(&body).kind, ChangeKind::Removed, "{name}");
    }
}

#[test]
fn unexpected_event_names_the_event_and_object() {
    let body = MOTO_PUT.replace("ObjectCreated:Put", "ObjectRestore:Completed");
    let err = parse(&body).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ObjectRestore:Completed"), "{text}");
    assert!(text.contains("s3://site/docs/a b+c/café.html"), "{text}");
    assert_eq!(err.disposition(), Disposition::Permanent);
}

#[test]
fn non_json_and_non_s3_bodies_are_errors() {
    assert!(matches!(parse("hello"), Err(NotificationError::NotJson(_))));
    assert!(matches!(
        parse(r#"{"orderId": 7}"#),
        Err(NotificationError::NotS3(_))
    ));
    let sns_source = MOTO_PUT.replace("aws:s3", "aws:sns");
    assert!(matches!(
        parse(&sns_source),
        Err(NotificationError::NotS3(_))
    ));
}

#[test]
fn sns_envelope_is_unwrapped() {
    let wrapped = serde_json::json!({"Type": "Notification", "Message": MOTO_PUT}).to_string();
    assert_eq!(only_change(&wrapped).key, "docs/a b+c/café.html");
}

#[test]
fn keys_decode_plus_percent_and_unicode() {
    assert_eq!(decode_key("a+b").unwrap(), "a b");
    assert_eq!(decode_key("a%2Bb").unwrap(), "a+b");
    assert_eq!(
        decode_key("%E6%97%A5%E6%9C%AC/%7Etilde%2A").unwrap(),
        "日本/~tilde*"
    );
    assert!(matches!(
        decode_key("bad%FF"),
        Err(NotificationError::KeyNotUtf8 { .. })
    ));
}
