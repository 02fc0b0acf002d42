//! Test support: a private local stack per test — its own moto_server on a free port,
//! template.yaml provisioned into it, and the real function binaries hosted behind the
//! Lambda Runtime API — so tests run in parallel and never see each other's state.

// Test support: a failed unwrap here is a failed test, as in the tests themselves.
#![allow(clippy::unwrap_used)]

pub mod aws_fault_proxy;
pub mod fault_proxy;
pub mod file_pipeline;

/// Runs `cleanup` to completion on a runtime of its own, from a `Drop` (the test's runtime
/// may be gone or busy). Best effort: a leftover test database harms nothing.
pub fn clean_up_detached<F>(cleanup: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = Option<()>>,
{
    let _ = run_detached(cleanup);
}

/// Runs `work` to completion on a runtime of its own thread and gives its answer (None when
/// no runtime could start): for a `Drop`, where the test's runtime may be gone or busy.
pub fn run_detached<T, F>(work: impl FnOnce() -> F + Send + 'static) -> Option<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Option<T>>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?
            .block_on(work())
    })
    .join()
    .ok()
    .flatten()
}
pub mod mysql;
pub mod pipeline;
pub mod postgres;
pub mod soak;
pub mod star;

use anyhow::{anyhow, Context, Result};
use landfall_devstack::host::{serve_invoke_api, served_endpoints};
use landfall_devstack::{
    deliver_once, local_aws_env, local_sdk_config, provision, Delivery, Host, Stack, Target,
    Template,
};
use landfall_redshift_local::DataApi;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub const REGION: &str = "eu-west-2";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// Where `cargo build` put the function binaries.
pub fn binaries_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("debug")
}

pub struct LocalStack {
    _moto: Child,
    pub endpoint: String,
    pub sdk: aws_config::SdkConfig,
    pub stack: Stack,
    logs: PathBuf,
    host: Option<Host>,
    /// Where the host serves the Invoke, ECS and Redshift Data APIs.
    served: Option<String>,
    redshift: Option<sqlx::postgres::PgConnectOptions>,
    /// (secret, value) of every secret value the functions were given, to find in no log
    /// and no payload.
    secret_values: Vec<(String, String)>,
}

impl LocalStack {
    /// moto started and template.yaml provisioned; functions start on first delivery.
    pub async fn start() -> Result<LocalStack> {
        LocalStack::start_with_secrets(&[]).await
    }

    /// As `start`, with local values for secrets the template generates.
    pub async fn start_with_secrets(secrets: &[(&str, String)]) -> Result<LocalStack> {
        LocalStack::start_with(secrets, &[]).await
    }

    /// As `start_with_secrets`, with moto_server's own settings (`LANDFALL_IMPORT_SECONDS`
    /// and the like, scripts/moto_server.py) for this stack alone.
    pub async fn start_with(
        secrets: &[(&str, String)],
        moto_env: &[(&str, &str)],
    ) -> Result<LocalStack> {
        LocalStack::start_configured(secrets, moto_env, &[]).await
    }

    /// As `start_with`, with template parameters other than the local defaults (a
    /// configuration the template offers, e.g. `WarehouseEngine=redshift`).
    pub async fn start_configured(
        secrets: &[(&str, String)],
        moto_env: &[(&str, &str)],
        parameters: &[(&str, &str)],
    ) -> Result<LocalStack> {
        // moto_server, corrected where it answers otherwise than AWS (scripts/moto_server.py).
        let python = workspace_root().join(".venv/bin/python");
        if !python.exists() {
            return Err(anyhow!(
                "{} is missing: run `make venv` (make test does)",
                python.display()
            ));
        }
        let server = workspace_root().join("scripts/moto_server.py");
        let port = free_port()?;
        let moto = Command::new(&python)
            .arg(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(moto_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting moto_server")?;
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_for_port(port, Duration::from_secs(30)).await?;
        let sdk = local_sdk_config(&endpoint, REGION).await;
        let template = Template::load(&workspace_root().join("template.yaml"))?;
        let mut target = Target {
            region: REGION.into(),
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..Target::default()
        };
        target.parameters.extend(
            parameters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let stack = provision(&template, &target, &sdk).await?;
        let logs =
            std::env::temp_dir().join(format!("landfall-test-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&logs)?;
        let secret_values = secrets
            .iter()
            .flat_map(|(name, value)| {
                secret_values(value)
                    .into_iter()
                    .map(move |v| (name.to_string(), v))
            })
            .collect();
        Ok(LocalStack {
            _moto: moto,
            endpoint,
            sdk,
            stack,
            logs,
            host: None,
            served: None,
            redshift: None,
            secret_values,
        })
    }

    /// Adds `statement` to the role of `function`: for a test that runs a function in a
    /// configuration the template does not deploy (and so does not grant).
    pub async fn grant(&self, function: &str, statement: serde_json::Value) -> Result<()> {
        let role = self.role_of(function)?;
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [statement]});
        landfall_devstack::iam::create_role(
            &self.endpoint,
            role,
            function,
            &[("GrantedByTheTest".to_owned(), policy)].into(),
            &[],
        )
        .await?;
        Ok(())
    }

    /// Deletes the statement `sid` from the role of `function`: the mutation that shows a
    /// test needs it.
    pub async fn revoke(&self, function: &str, sid: &str) -> Result<()> {
        let role = self.role_of(function)?;
        landfall_devstack::iam::revoke(&self.endpoint, role, function, sid).await
    }

    /// The name of the role `function` runs as.
    fn role_of(&self, function: &str) -> Result<&str> {
        let spec = self
            .stack
            .function(function)
            .ok_or_else(|| anyhow!("no function {function}"))?;
        Ok(spec.session.role_arn.rsplit('/').next().unwrap_or_default())
    }

    /// The requests the local IAM denied so far, which the test expected: taken, so they do
    /// not fail the test when the stack is dropped.
    pub async fn take_denials(&self) -> Result<Vec<String>> {
        landfall_devstack::iam::denials(&self.endpoint, true).await
    }

    /// Where the functions' logs and `payloads.log` (every invocation, answer and task
    /// request the host saw) are written.
    pub fn logs_dir(&self) -> &Path {
        &self.logs
    }

    /// Every place a secret value given to this stack shows up in what its functions
    /// logged or were sent or answered: `secret in file, line n`. Empty is the only good
    /// answer; every end-to-end test checks it when its stack is dropped.
    pub fn leaked_secrets(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.logs) else {
            return leaks;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let text =
                String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
            for (number, line) in text.lines().enumerate() {
                for (secret, value) in &self.secret_values {
                    if line.contains(value.as_str()) {
                        leaks.push(format!(
                            "{secret} in {}, line {}",
                            path.display(),
                            number + 1
                        ));
                    }
                }
            }
        }
        leaks
    }

    /// Changes a function's environment before it first runs (as a redeploy would).
    pub fn set_function_env(&mut self, function: &str, name: &str, value: Option<&str>) {
        assert!(
            self.host.is_none(),
            "set the environment before the first invocation"
        );
        let spec = self
            .stack
            .functions
            .get_mut(function)
            .expect("function in template");
        match value {
            Some(v) => spec.environment.insert(name.to_owned(), v.to_owned()),
            None => spec.environment.remove(name),
        };
    }

    /// Changes a function's Timeout before it first runs.
    pub fn set_function_timeout(&mut self, function: &str, seconds: u64) {
        assert!(
            self.host.is_none(),
            "set the timeout before the first invocation"
        );
        self.stack
            .functions
            .get_mut(function)
            .expect("function in template")
            .timeout_secs = seconds;
    }

    /// Serves the Redshift Data API too, running its statements on `database` (before the
    /// first invocation).
    pub fn serve_redshift(&mut self, database: sqlx::postgres::PgConnectOptions) {
        assert!(
            self.host.is_none(),
            "serve Redshift before the first invocation"
        );
        self.redshift = Some(database);
    }

    /// The Redshift Data API the host serves (`serve_redshift`), as a caller of the
    /// stack's workgroup sees it, following statements every 50 ms.
    pub fn data_api(&mut self) -> landfall_redshift_data::Warehouse {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(self.served_url())
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "local"),
            ))
            .build();
        let mut warehouse = landfall_redshift_data::Warehouse::new(
            aws_sdk_redshiftdata::Client::new(&sdk),
            landfall_redshift_data::Target::Workgroup {
                name: "landfall".into(),
                secret_arn: None,
            },
            "dev",
        );
        warehouse.poll = Duration::from_millis(50);
        warehouse
    }

    /// `http://…` of the APIs the host serves (Lambda Invoke, ECS, Redshift Data).
    pub fn served_url(&mut self) -> String {
        self.host();
        self.served.clone().expect("set with the host")
    }

    /// The function host, with the Lambda Invoke API served for functions that invoke
    /// other functions.
    /// A second set of the functions' processes, as Lambda runs a second execution
    /// environment beside the first: two deliveries of one message at the same time. Its
    /// functions call other functions through the first host's Invoke API.
    pub fn second_host(&mut self) -> Host {
        self.host();
        let address: std::net::SocketAddr = self
            .served
            .as_deref()
            .and_then(|url| url.strip_prefix("http://"))
            .and_then(|a| a.parse().ok())
            .expect("the first host serves");
        let mut base_env = local_aws_env(&self.endpoint, REGION);
        base_env.extend(served_endpoints(address));
        let logs = self.logs.join("second-host");
        std::fs::create_dir_all(&logs).expect("a log folder");
        Host::new(&self.stack, binaries_dir(), logs, base_env)
    }

    /// The notification in `queue` (a logical id) whose body mentions `key`, handed to
    /// `function` in two execution environments at the same time, as SQS and S3 may deliver
    /// it twice; both answers. Each must report no failed record.
    pub async fn deliver_twice_at_once(
        &mut self,
        function: &str,
        queue: &str,
        key: &str,
    ) -> Result<()> {
        let queue_url = self.resource(queue);
        let received = self
            .sqs()
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await?;
        let message = received
            .messages()
            .iter()
            .find(|m| m.body().unwrap_or_default().contains(key))
            .cloned()
            .ok_or_else(|| anyhow!("no notification of {key} in {queue}"))?;
        let queue_arn = format!(
            "arn:aws:sqs:{REGION}:123456789012:{}",
            queue_url.rsplit('/').next().unwrap_or_default()
        );
        let event =
            landfall_devstack::pump::sqs_event(std::slice::from_ref(&message), &queue_arn, REGION)
                .to_string();
        let (first, second) = (self.host(), self.second_host());
        let (a, b) = tokio::join!(
            first.invoke(function, event.clone().into()),
            second.invoke(function, event.into())
        );
        for answer in [a?, b?] {
            let body = answer.json()?;
            if answer.function_error.is_some() || body["batchItemFailures"] != serde_json::json!([])
            {
                return Err(anyhow!(
                    "a delivery failed: {body}\n{}",
                    self.function_log(function)
                ));
            }
        }
        Ok(())
    }

    pub fn host(&mut self) -> Host {
        if self.host.is_none() {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            let address = listener.local_addr().expect("bound");
            listener.set_nonblocking(true).expect("nonblocking");
            let mut base_env = local_aws_env(&self.endpoint, REGION);
            base_env.extend(served_endpoints(address));
            let mut host = Host::new(&self.stack, binaries_dir(), self.logs.clone(), base_env);
            if let Some(database) = self.redshift.clone() {
                host = host.with_redshift(DataApi::new(
                    database,
                    self.s3(),
                    self.stack.role_credentials(),
                ));
            }
            self.served = Some(format!("http://{address}"));
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            tokio::spawn(serve_invoke_api(host.clone(), listener));
            self.host = Some(host);
        }
        self.host.clone().expect("set above")
    }

    /// The physical name / URL / id of a template resource.
    pub fn resource(&self, logical_id: &str) -> String {
        self.stack
            .reference(logical_id)
            .unwrap_or_else(|| panic!("{logical_id} not in template"))
            .to_owned()
    }

    /// An SDK configuration signing as a function (by binary) or ECS task (by family) of the
    /// stack (its role's session),
    /// pointed at `endpoint` (moto, or the host's served APIs).
    pub async fn sdk_as(&self, function_or_task: &str, endpoint: &str) -> aws_config::SdkConfig {
        let session = self
            .stack
            .function(function_or_task)
            .map(|f| &f.session)
            .or_else(|| {
                self.stack
                    .task_definitions
                    .values()
                    .find(|t| t.family == function_or_task || t.binary == function_or_task)
                    .map(|t| &t.session)
            })
            .unwrap_or_else(|| panic!("{function_or_task} is no function or task of the stack"));
        LocalStack::sdk_for(session, endpoint).await
    }

    /// An SDK configuration signing with `session`, pointed at `endpoint`; one attempt per
    /// call, so a refusal is seen as it is.
    pub async fn sdk_for(
        session: &landfall_devstack::iam::RoleSession,
        endpoint: &str,
    ) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &session.access_key_id,
                &session.secret_access_key,
                Some(session.session_token.clone()),
                None,
                "role session",
            ))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .load()
            .await
    }

    /// An S3 client for `sdk` (path-style, as moto needs).
    pub fn s3_with(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .build(),
        )
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        LocalStack::s3_with(&self.sdk)
    }

    /// Puts `body` at `key` in the template bucket `bucket` (a logical id); gives the new
    /// version's id (empty on an unversioned bucket).
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: impl Into<aws_sdk_s3::primitives::ByteStream>,
    ) -> Result<String> {
        let out = self
            .s3()
            .put_object()
            .bucket(self.resource(bucket))
            .key(key)
            .body(body.into())
            .send()
            .await?;
        Ok(out.version_id().unwrap_or_default().to_owned())
    }

    /// Uploads `body` as `aws s3 cp` does a file of 8 MB or more: a multipart upload in 8 MB
    /// parts (the console uses 16 MB), whose ETag is `<md5 of md5s>-<parts>`, not an MD5.
    pub async fn upload_in_parts(&self, bucket: &str, key: &str, body: &[u8]) -> Result<String> {
        let s3 = self.s3();
        let bucket = self.resource(bucket);
        let upload = s3
            .create_multipart_upload()
            .bucket(&bucket)
            .key(key)
            .send()
            .await?;
        let id = upload.upload_id().unwrap_or_default();
        let mut parts = vec![];
        for (index, chunk) in body.chunks(8 * 1024 * 1024).enumerate() {
            let number = index as i32 + 1;
            let part = s3
                .upload_part()
                .bucket(&bucket)
                .key(key)
                .upload_id(id)
                .part_number(number)
                .body(chunk.to_vec().into())
                .send()
                .await?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_owned))
                    .build(),
            );
        }
        let done = s3
            .complete_multipart_upload()
            .bucket(&bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await?;
        Ok(done.version_id().unwrap_or_default().to_owned())
    }

    /// Suspends versioning of the template bucket `bucket` (a logical id): every upload is
    /// then version "null", as in a bucket never versioned.
    pub async fn suspend_versioning(&self, bucket: &str) -> Result<()> {
        self.s3()
            .put_bucket_versioning()
            .bucket(self.resource(bucket))
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// Runs the AWS CLI (PyPI's awscli, in .venv) against this stack as its admin, as people
    /// upload with it: `aws s3 cp` sends a file of 8 MB or more as a multipart upload in 8 MB
    /// parts and copies an object that size in parts too (UploadPartCopy), each part with a
    /// CRC32 checksum unless `AWS_REQUEST_CHECKSUM_CALCULATION=when_required` is set. Gives
    /// what it printed.
    pub async fn aws_cli(&self, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
        let out = Command::new(workspace_root().join(".venv/bin/aws"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .envs(env.iter().copied())
            .output()
            .await
            .context("running .venv/bin/aws (make venv installs it)")?;
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(anyhow!(
                "aws {}: {printed}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(printed)
    }

    /// The keys under `prefix` in `bucket` (one page: tests keep buckets small).
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        let listed = self
            .s3()
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await?;
        Ok(listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect())
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.sdk)
    }

    /// One SQS delivery to `function`, as its event source mapping would make it, of what
    /// is on the queue now (no batching window: the test decides what a batch holds).
    pub async fn deliver(&mut self, function: &str) -> Result<Delivery> {
        let host = self.host();
        let spec = self
            .stack
            .functions
            .get(function)
            .ok_or_else(|| anyhow!("no {function}"))?
            .clone();
        let mapping = spec
            .sqs
            .first()
            .ok_or_else(|| anyhow!("{function} has no SQS event"))?;
        deliver_once(
            &host,
            &self.sqs(),
            REGION,
            &spec,
            mapping,
            1,
            Duration::ZERO,
        )
        .await
    }

    /// What the function wrote to stdout/stderr (its CloudWatch log, locally).
    pub fn function_log(&self, function: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{function}.log"))).unwrap_or_default()
    }

    /// Every message on a queue, bodies and attributes, without deleting them.
    pub async fn peek(&self, queue_url: &str) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        let out = self
            .sqs()
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await?;
        Ok(out.messages.unwrap_or_default())
    }

    /// The `landfall-error` reason of every message in the dead-letter queue `dlq` (a
    /// template logical id), without consuming them.
    pub async fn dead_letter_reasons(&self, dlq: &str) -> Result<Vec<String>> {
        Ok(self
            .peek(&self.resource(dlq))
            .await?
            .iter()
            .map(|m| {
                m.message_attributes()
                    .and_then(|a| a.get("landfall-error"))
                    .and_then(|v| v.string_value())
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect())
    }

    /// Every message on a queue taken off it (received and deleted): their bodies, held back
    /// to be sent again later, as a message that is being retried comes back late.
    pub async fn take(&self, queue_url: &str) -> Result<Vec<String>> {
        let mut bodies = Vec::new();
        for message in self.peek(queue_url).await? {
            bodies.push(message.body().unwrap_or_default().to_owned());
            self.sqs()
                .delete_message()
                .queue_url(queue_url)
                .set_receipt_handle(message.receipt_handle)
                .send()
                .await?;
        }
        Ok(bodies)
    }

    /// `body` on the queue again, as SQS redelivers a message.
    pub async fn send(&self, queue_url: &str, body: &str) -> Result<()> {
        self.sqs()
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await?;
        Ok(())
    }

    /// The one email sent so far (recipients, subject, body); an error if there is not
    /// exactly one, or if it tells a failure.
    pub async fn the_only_email(&self) -> Result<(Vec<String>, String, String)> {
        let mut emails = self.sent_emails().await?;
        let subjects: Vec<&str> = emails
            .iter()
            .map(|(_, subject, _)| subject.as_str())
            .collect();
        if emails.len() != 1 || subjects[0].contains("FAILED") {
            return Err(anyhow!("expected one email, not a failure: {subjects:?}"));
        }
        Ok(emails.remove(0))
    }

    pub async fn queue_depth(&self, queue_url: &str) -> Result<usize> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        let attributes = out.attributes.unwrap_or_default();
        let count = |a: &A| {
            attributes
                .get(a)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        Ok(count(&A::ApproximateNumberOfMessages)
            + count(&A::ApproximateNumberOfMessagesNotVisible))
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        // Every request a function or task made was allowed by its role, or the test fails
        // naming the function, the call and the resource (scripts/local_iam/enforce.py).
        let endpoint = self.endpoint.clone();
        let denials = run_detached(move || async move {
            Some(
                landfall_devstack::iam::denials(&endpoint, false)
                    .await
                    .unwrap_or_else(|err| vec![format!("the local IAM did not answer: {err:#}")]),
            )
        })
        .unwrap_or_default();
        if !denials.is_empty() && std::thread::panicking() {
            eprintln!("the local IAM denied:\n{}", denials.join("\n"));
        } else if !denials.is_empty() {
            panic!(
                "the local IAM denied requests of the stack's roles (template.yaml lacks a \
                 permission, or the code calls what it should not):\n{}",
                denials.join("\n")
            );
        }
        // Function processes are killed with their Host (kill_on_drop); moto with _moto.
        let leaks = self.leaked_secrets();
        if leaks.is_empty() || std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.logs);
        } else {
            // Kept for a look; the test fails here.
            panic!("secret values in logs or payloads:\n{}", leaks.join("\n"));
        }
    }
}

/// The values of a secret that must never be seen: a JSON secret's non-empty `password`
/// (and any field named like a key or token), or the whole text of any other secret.
pub fn secret_values(secret: &str) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(secret) {
        Ok(serde_json::Value::Object(fields)) => fields
            .iter()
            .filter(|(name, _)| {
                let name = name.to_ascii_lowercase();
                ["password", "secret", "token", "key"]
                    .iter()
                    .any(|word| name.contains(word))
            })
            .filter_map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .collect(),
        _ if secret.is_empty() => Vec::new(),
        _ => vec![secret.to_owned()],
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) async fn wait_for_port(port: u16, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!(
        "moto_server did not listen on {port} within {limit:?}"
    ))
}

impl LocalStack {
    /// Emails SES accepted, as (to, subject, body), read from moto's state.
    pub async fn sent_emails(&self) -> Result<Vec<(Vec<String>, String, String)>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(
                format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let state: serde_json::Value = serde_json::from_str(body).with_context(|| {
            format!(
                "moto's data.json: {}",
                text.chars().take(300).collect::<String>()
            )
        })?;
        let messages = state["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(messages
            .iter()
            .map(|m| {
                let to = landfall_devstack::template::strings(&m["destinations"]["ToAddresses"]);
                (
                    to,
                    m["subject"].as_str().unwrap_or_default().to_owned(),
                    m["body"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }
}
