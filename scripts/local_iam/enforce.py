"""IAM for the local stack: every request signed with a role's credentials is authorised
against that role's policies, with IAM's rules, before moto sees it.

The devstack provisions each role of template.yaml into moto's IAM (as the admin key
"testing", which is never checked) and starts each function and ECS task with credentials
from sts:AssumeRole of its own role. Here a request signed with such credentials is turned
into the IAM requests AWS would authorise (action, resource ARN, condition keys: the
"Service Authorization Reference" of each service), and each is decided by
@cloud-copilot/iam-simulate (simulate.mjs). A denial is answered as the service answers it
(403 AccessDenied) and recorded; `GET /_landfall/iam/denials` lists them, and every
LocalStack fails its test when one was recorded that the test did not expect.

A request this module cannot map is denied too ("unmapped"): the emulation fails closed.

The devstack's own APIs (Lambda Invoke, ECS, Redshift Data) ask `POST /_landfall/iam/authorize`
with the original method, path, headers and body, so every decision is made here.
"""

import io
import json
import os
import subprocess
import threading
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

ACCOUNT = "123456789012"
HERE = Path(__file__).resolve().parent


class Unmapped(Exception):
    """A request this module does not know how to authorise."""


class Call:
    """One IAM request: what AWS authorises for (part of) an API call."""

    def __init__(self, action, resource, context=None):
        self.action = action
        self.resource = resource
        self.context = context or {}

    def describe(self):
        context = "".join(f" {k}={v!r}" for k, v in sorted(self.context.items()))
        return f"{self.action} on {self.resource}{context}"


# --------------------------------------------------------------------------- the evaluator


class Simulator:
    """One node process running simulate.mjs; one question at a time."""

    def __init__(self):
        self._node = None
        self._lock = threading.Lock()
        # (role, its policies' version, action, resource, context) → the answer: the same
        # request decides the same way until the role's policies change.
        self._decided = {}

    def _start(self):
        script = HERE / "simulate.mjs"
        if not (HERE / "node_modules" / "@cloud-copilot" / "iam-simulate").exists():
            raise SystemExit(
                f"{HERE}/node_modules is missing: run `make venv` (scripts/ensure-tools.sh)"
            )
        return subprocess.Popen(
            ["node", str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def decide(self, principal, role, call):
        version, policies = role_policies(role)
        key = (role, version, call.action, call.resource, json.dumps(call.context, sort_keys=True))
        answer = self._decided.get(key)
        if answer is None:
            answer = self._ask(principal, policies, call)
            self._decided[key] = answer
        return answer

    def _ask(self, principal, policies, call):
        question = {
            "principal": principal,
            "policies": policies,
            "action": call.action,
            "resource": call.resource,
            "context": call.context,
        }
        with self._lock:
            if self._node is None:
                self._node = self._start()
            self._node.stdin.write(json.dumps(question) + "\n")
            self._node.stdin.flush()
            answer = self._node.stdout.readline()
        if not answer:
            raise RuntimeError("the IAM evaluator (node simulate.mjs) stopped")
        answer = json.loads(answer)
        return answer["decision"], answer["why"], answer.get("allowed_by", [])


# --------------------------------------------------------------------------- who is asking


def request_headers(environ):
    """The request's HTTP headers, lower-cased, from a WSGI environ."""
    return {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }


def credential_scope(headers, query):
    """(access key id, region, service) of the SigV4 signature (header or presigned query):
    `Credential=AKID/date/region/service/aws4_request`."""
    authorization = headers.get("authorization", "")
    if "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        credential = query.get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    if len(parts) < 4:
        return parts[0] or None, "eu-west-2", ""
    return parts[0], parts[2], parts[3]


def assumed_role(key):
    """(assumed-role ARN, role name, session name) for credentials from sts:AssumeRole,
    else None."""
    if not key:
        return None
    from moto.sts.models import sts_backends

    role = sts_backends[ACCOUNT]["aws"].get_assumed_role_from_access_key(key)
    if role is None:
        return None
    return role.arn, role.role_arn.split("/")[-1], role.session_name


# Role name → (version, policies); a role's entry goes when provisioning changes it.
_POLICIES = {}
_VERSIONS = {}


def role_policies(role_name):
    """(version, the role's inline and attached policies as moto's IAM holds them)."""
    cached = _POLICIES.get(role_name)
    if cached is None:
        cached = (_VERSIONS.get(role_name, 0), _read_policies(role_name))
        _POLICIES[role_name] = cached
    return cached


def _changed(role_name):
    _VERSIONS[role_name] = _VERSIONS.get(role_name, 0) + 1
    _POLICIES.pop(role_name, None)


def _read_policies(role_name):
    from moto.iam.models import iam_backends

    # Only inline policies: provisioning copies AWS managed ones inline (create_and_assume_role).
    role = iam_backends[ACCOUNT]["aws"].get_role(role_name)
    return [
        {"name": name, "policy": json.loads(document) if isinstance(document, str) else document}
        for name, document in role.policies.items()
    ]


# --------------------------------------------------------------------------- request → IAM requests


def s3_object_arn(bucket, key):
    return f"arn:aws:s3:::{bucket}/{key}"


def copy_source_calls(headers):
    """CopyObject and UploadPartCopy read their source with the caller's permissions."""
    source = headers.get("x-amz-copy-source")
    if not source:
        return []
    source = unquote(source.lstrip("/"))
    path, _, query = source.partition("?")
    bucket, _, key = path.partition("/")
    version = parse_qs(query).get("versionId")
    action = "s3:GetObjectVersion" if version else "s3:GetObject"
    return [Call(action, s3_object_arn(bucket, key))]


def list_context(query):
    context = {}
    for parameter, key in (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys")):
        if parameter in query:
            context[key] = query[parameter][0]
    return context


BUCKET_SUBRESOURCES = {
    # (method, subresource): action
    ("GET", "versioning"): "s3:GetBucketVersioning",
    ("GET", "location"): "s3:GetBucketLocation",
    ("GET", "notification"): "s3:GetBucketNotification",
    ("GET", "lifecycle"): "s3:GetLifecycleConfiguration",
    ("GET", "tagging"): "s3:GetBucketTagging",
    ("GET", "policy"): "s3:GetBucketPolicy",
    ("GET", "uploads"): "s3:ListBucketMultipartUploads",
    ("PUT", "versioning"): "s3:PutBucketVersioning",
    ("PUT", "notification"): "s3:PutBucketNotification",
    ("PUT", "lifecycle"): "s3:PutLifecycleConfiguration",
    ("PUT", "tagging"): "s3:PutBucketTagging",
    ("PUT", "policy"): "s3:PutBucketPolicy",
}


def s3_calls(method, path, query, headers, body):
    bucket, _, key = path.lstrip("/").partition("/")
    bucket, key = unquote(bucket), unquote(key)
    if not bucket:
        return [Call("s3:ListAllMyBuckets", "*")]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        for (verb, subresource), action in BUCKET_SUBRESOURCES.items():
            if method == verb and subresource in query:
                return [Call(action, bucket_arn)]
        if method == "GET" and "versions" in query:
            return [Call("s3:ListBucketVersions", bucket_arn, list_context(query))]
        if method in ("GET", "HEAD"):
            return [Call("s3:ListBucket", bucket_arn, list_context(query) if method == "GET" else {})]
        if method == "POST" and "delete" in query:
            return delete_objects_calls(bucket, body)
        if method == "PUT":
            return [Call("s3:CreateBucket", bucket_arn)]
        if method == "DELETE":
            return [Call("s3:DeleteBucket", bucket_arn)]
        raise Unmapped(f"S3 {method} /{bucket}?{'&'.join(query)}")
    arn = s3_object_arn(bucket, key)
    versioned = "versionId" in query
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return [Call("s3:ListMultipartUploadParts", arn)]
        if "tagging" in query:
            return [Call("s3:GetObjectVersionTagging" if versioned else "s3:GetObjectTagging", arn)]
        if "attributes" in query:
            return [
                Call("s3:GetObjectVersionAttributes" if versioned else "s3:GetObjectAttributes", arn)
            ]
        if "acl" in query:
            return [Call("s3:GetObjectVersionAcl" if versioned else "s3:GetObjectAcl", arn)]
        return [Call("s3:GetObjectVersion" if versioned else "s3:GetObject", arn)]
    if method == "PUT":
        if "tagging" in query:
            return [Call("s3:PutObjectVersionTagging" if versioned else "s3:PutObjectTagging", arn)]
        # PutObject, UploadPart, CopyObject, UploadPartCopy: s3:PutObject on the target.
        calls = [Call("s3:PutObject", arn)]
        if headers.get("x-amz-tagging"):
            calls.append(Call("s3:PutObjectTagging", arn))
        return calls + copy_source_calls(headers)
    if method == "POST":
        if "uploads" in query or "uploadId" in query:
            return [Call("s3:PutObject", arn)]
        if "restore" in query:
            return [Call("s3:RestoreObject", arn)]
        raise Unmapped(f"S3 POST {arn}?{'&'.join(query)}")
    if method == "DELETE":
        if "uploadId" in query:
            return [Call("s3:AbortMultipartUpload", arn)]
        if "tagging" in query:
            return [Call("s3:DeleteObjectVersionTagging" if versioned else "s3:DeleteObjectTagging", arn)]
        calls = [Call("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", arn)]
        if headers.get("if-match", "*") != "*":
            # A delete conditional on an ETag reads the object too (S3 user guide,
            # "conditional deletes": s3:DeleteObject and s3:GetObject).
            calls.append(Call("s3:GetObject", arn))
        return calls
    raise Unmapped(f"S3 {method} {arn}")


def delete_objects_calls(bucket, body):
    """DeleteObjects is authorised per key it names (S3 API reference, DeleteObjects)."""
    calls = []
    for element in ElementTree.fromstring(body or b"<Delete/>").iter():
        if element.tag.rsplit("}", 1)[-1] != "Object":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
        action = "s3:DeleteObjectVersion" if fields.get("VersionId") else "s3:DeleteObject"
        calls.append(Call(action, s3_object_arn(bucket, fields.get("Key", ""))))
    return calls


def dynamodb_resources(operation, body, region):
    table = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/"
    if "RequestItems" in body:
        return [table + name for name in body["RequestItems"]]
    if "TableName" in body:
        return [table + body["TableName"]]
    if "TableCreationParameters" in body:
        return [table + body["TableCreationParameters"]["TableName"]]
    for field in ("ImportArn", "ResourceArn", "TableArn", "ExportArn"):
        if field in body:
            return [body[field]]
    return ["*"]


def dynamodb_implied(operation, body, region):
    """ImportTable reads its source and writes its logs with the caller's permissions
    (DynamoDB developer guide, "Requesting a table import in DynamoDB": IAM permissions)."""
    if operation != "ImportTable":
        return []
    source = body.get("S3BucketSource", {})
    bucket, prefix = source.get("S3Bucket", ""), source.get("S3KeyPrefix", "")
    log_stream = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws-dynamodb/imports:log-stream:import"
    return [
        Call("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": prefix}),
        Call("s3:GetObject", s3_object_arn(bucket, prefix)),
        Call("logs:CreateLogStream", log_stream),
        Call("logs:PutLogEvents", log_stream),
    ]


def sqs_resources(operation, body, region):
    url = body.get("QueueUrl")
    if url:
        return [f"arn:aws:sqs:{region}:{ACCOUNT}:{url.rstrip('/').rsplit('/', 1)[-1]}"]
    if "QueueName" in body:
        return [f"arn:aws:sqs:{region}:{ACCOUNT}:{body['QueueName']}"]
    return ["*"]


def secret_arn(identifier, region):
    if identifier.startswith("arn:"):
        return identifier
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        return secretsmanager_backends[ACCOUNT][region].secrets[identifier].arn
    except KeyError:
        return f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{identifier}-??????"


def secretsmanager_resources(operation, body, region):
    return [secret_arn(body["SecretId"], region)] if "SecretId" in body else ["*"]


def ssm_resources(operation, body, region):
    names = body.get("Names") or [body.get("Name") or body.get("Path")]
    return [
        f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{name.lstrip('/')}" for name in names if name
    ] or ["*"]


def glue_resources(operation, body, region):
    if operation.endswith("Crawler") and "Name" in body:
        return [f"arn:aws:glue:{region}:{ACCOUNT}:crawler/{body['Name']}"]
    return ["*"]


def ecs_context(body, region):
    cluster = body.get("cluster", "default")
    if not cluster.startswith("arn:"):
        cluster = f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{cluster}"
    return {"ecs:cluster": cluster}


def ecs_resources(operation, body, region):
    if operation == "RunTask":
        definition = body.get("taskDefinition", "")
        if not definition.startswith("arn:"):
            family, _, revision = definition.partition(":")
            definition = f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{family}:{revision or '1'}"
        return [definition]
    if operation in ("DescribeTasks", "StopTask"):
        tasks = body.get("tasks") or [body.get("task")]
        return [t for t in tasks if t] or ["*"]
    return ["*"]


def redshift_data_resources(operation, body, region):
    if "ClusterIdentifier" in body:
        return [f"arn:aws:redshift:{region}:{ACCOUNT}:cluster:{body['ClusterIdentifier']}"]
    if "WorkgroupName" in body:
        return [f"arn:aws:redshift-serverless:{region}:{ACCOUNT}:workgroup/{body['WorkgroupName']}"]
    return ["*"]


def redshift_data_implied(operation, body, region):
    """With SecretArn the Data API reads the secret with the caller's permissions."""
    if "SecretArn" in body:
        return [Call("secretsmanager:GetSecretValue", secret_arn(body["SecretArn"], region))]
    return []


JSON_SERVICES = {
    # signing name: (IAM prefix, resources of a call, further IAM requests the call makes)
    "dynamodb": ("dynamodb", dynamodb_resources, dynamodb_implied),
    "sqs": ("sqs", sqs_resources, None),
    "secretsmanager": ("secretsmanager", secretsmanager_resources, None),
    "ssm": ("ssm", ssm_resources, None),
    "glue": ("glue", glue_resources, None),
    "ecs": ("ecs", ecs_resources, None),
    "redshift-data": ("redshift-data", redshift_data_resources, redshift_data_implied),
}


def json_calls(service, target, body, region):
    if service not in JSON_SERVICES:
        raise Unmapped(f"{service} {target}")
    prefix, resources, implied = JSON_SERVICES[service]
    operation = target.rsplit(".", 1)[-1]
    body = json.loads(body or b"{}")
    context = ecs_context(body, region) if service == "ecs" else {}
    calls = [Call(f"{prefix}:{operation}", r, context) for r in resources(operation, body, region)]
    return calls + (implied(operation, body, region) if implied else [])


def rest_calls(service, method, path, body, region):
    """The REST services the functions call: SES v2, CloudFront, Lambda Invoke."""
    if service == "ses" and method == "POST" and path == "/v2/email/outbound-emails":
        sender = json.loads(body or b"{}").get("FromEmailAddress", "")
        address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
        identity = f"arn:aws:ses:{region}:{ACCOUNT}:identity/{address}"
        return [Call("ses:SendEmail", identity, {"ses:FromAddress": address})]
    if service == "cloudfront":
        parts = path.strip("/").split("/")
        if method == "GET" and parts[1:] == ["distribution"]:
            return [Call("cloudfront:ListDistributions", "*")]
        if method == "GET" and len(parts) in (3, 4) and parts[1] == "distribution" and parts[-1] != "invalidation":
            distribution = f"arn:aws:cloudfront::{ACCOUNT}:distribution/{parts[2]}"
            action = "cloudfront:GetDistributionConfig" if parts[-1] == "config" else "cloudfront:GetDistribution"
            return [Call(action, distribution)]
        if len(parts) >= 4 and parts[1] == "distribution" and parts[3] == "invalidation":
            distribution = f"arn:aws:cloudfront::{ACCOUNT}:distribution/{parts[2]}"
            if method == "POST":
                return [Call("cloudfront:CreateInvalidation", distribution)]
            action = "cloudfront:GetInvalidation" if len(parts) > 4 else "cloudfront:ListInvalidations"
            return [Call(action, distribution)]
    if service == "lambda" and method == "POST" and path.endswith("/invocations"):
        name = unquote(path.split("/functions/", 1)[1].split("/", 1)[0])
        if not name.startswith("arn:"):
            name = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
        return [Call("lambda:InvokeFunction", name)]
    raise Unmapped(f"{service} {method} {path}")


def calls_of(method, path, query_string, headers, body):
    query = parse_qs(query_string, keep_blank_values=True)
    _, region, service = credential_scope(headers, query)
    if service == "s3":
        return s3_calls(method, path, query, headers, body)
    target = headers.get("x-amz-target")
    if target:
        return json_calls(service, target, body, region)
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode())
        if service == "sts" and form.get("Action") == ["GetCallerIdentity"]:
            return []  # needs no permission
        raise Unmapped(f"{service} {form.get('Action', ['?'])[0]} (query protocol)")
    return rest_calls(service, method, path, body, region)


# --------------------------------------------------------------------------- the decision

# `make iam-mutants` sets it: a JSON line per allowed request, with the statements that
# allowed it (scripts/iam_mutants.py finds the statements no request needs but one).
EVIDENCE = os.environ.get("LANDFALL_IAM_EVIDENCE")


def record_evidence(role, session, call, allowed_by):
    if not EVIDENCE:
        return
    line = json.dumps(
        {"role": role, "session": session, "call": call.describe(), "allowed_by": allowed_by}
    )
    with open(EVIDENCE, "a", encoding="utf-8") as evidence:
        evidence.write(line + "\n")


class Enforcer:
    """WSGI middleware in front of moto: decides, records denials, and answers a read of a
    missing object 403 to a role that may not list it, as S3 does."""

    def __init__(self, app):
        self.app = app
        self.simulator = Simulator()
        self.denials = []
        self._denials_lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_landfall/iam/"):
            return self.control(environ, start_response, path)
        headers = request_headers(environ)
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = environ["CONTENT_TYPE"]
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        key, _, service = credential_scope(headers, query)
        principal = assumed_role(key)
        if principal is None:
            return self.app(environ, start_response)
        body = read_body(environ)
        method = environ["REQUEST_METHOD"]
        raw_path = environ.get("RAW_URI", "").split("?", 1)[0] or path
        denied, calls = self.authorize(
            principal, method, raw_path, environ.get("QUERY_STRING", ""), headers, body
        )
        if denied:
            return access_denied(service, denied, start_response)
        reads = [c for c in calls if c.action in ("s3:GetObject", "s3:GetObjectVersion")]
        if method in ("GET", "HEAD") and len(calls) == 1 and reads:
            return self.forbid_unlisted_absence(principal, reads[0], environ, start_response)
        return self.app(environ, start_response)

    def authorize(self, principal, method, path, query_string, headers, body, passed=()):
        """(the denial's text or None, the IAM requests) for one request."""
        role_arn, role, session = principal
        try:
            calls = calls_of(method, path, query_string, headers, body)
            # RunTask hands its definition's roles to ECS: iam:PassRole of each, by the caller.
            calls += [
                Call("iam:PassRole", arn, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
                for arn in passed
            ]
        except Unmapped as unmapped:
            return self.deny(session, role, f"unmapped request {unmapped}", None), []
        for call in calls:
            decision, why, allowed_by = self.simulator.decide(role_arn, role, call)
            if decision != "Allowed":
                detail = f"{decision}{': ' + why if why else ''}"
                return self.deny(session, role, call.describe(), detail), calls
            record_evidence(role, session, call, allowed_by)
        return None, calls

    def deny(self, session, role, what, detail):
        text = f"IAM denied {session} (role {role}): {what}" + (f" [{detail}]" if detail else "")
        with self._denials_lock:
            self.denials.append(text)
        return text

    def forbid_unlisted_absence(self, principal, read, environ, start_response):
        """S3 answers a read of a missing key 404 only to a caller who may s3:ListBucket
        it, else 403 (S3 API reference, HeadObject/GetObject, "Permissions")."""
        bucket, _, key = read.resource.removeprefix("arn:aws:s3:::").partition("/")
        listing = Call("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": key})
        captured = {}

        def capture(status, response_headers, exc_info=None):
            captured["status"], captured["headers"] = status, response_headers
            return lambda _data: None

        answer = self.app(environ, capture)
        if captured["status"].startswith("404"):
            decision, _, allowed_by = self.simulator.decide(principal[0], principal[1], listing)
            if decision == "Allowed":
                record_evidence(principal[1], principal[2], listing, allowed_by)
            if decision != "Allowed":
                if hasattr(answer, "close"):
                    answer.close()
                return s3_error(
                    "403 Forbidden",
                    "AccessDenied",
                    "Access Denied (the key is missing and the role may not s3:ListBucket it)",
                    start_response,
                    head=environ["REQUEST_METHOD"] == "HEAD",
                )
        start_response(captured["status"], captured["headers"])
        return answer

    def control(self, environ, start_response, path):
        if path == "/_landfall/iam/denials":
            with self._denials_lock:
                body = json.dumps(self.denials).encode()
                if environ["REQUEST_METHOD"] == "DELETE":
                    self.denials = []
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path == "/_landfall/iam/roles":
            answer = create_and_assume_role(json.loads(read_body(environ)))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(answer).encode()]
        if path == "/_landfall/iam/authorize":
            # The devstack's own APIs: the original request, described in headers.
            body = read_body(environ)
            headers = request_headers(environ)
            original = urlsplit(headers.get("x-landfall-original-uri", "/"))
            query = parse_qs(original.query, keep_blank_values=True)
            principal = assumed_role(credential_scope(headers, query)[0])
            denied = None
            if principal is not None:
                if "x-landfall-original-content-type" in headers:
                    headers["content-type"] = headers["x-landfall-original-content-type"]
                denied, _ = self.authorize(
                    principal,
                    headers.get("x-landfall-original-method", "POST"),
                    original.path,
                    original.query,
                    headers,
                    body,
                    [arn for arn in headers.get("x-landfall-passes-roles", "").split(",") if arn],
                )
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"denied": denied}).encode()]
        start_response("404 Not Found", [])
        return [b""]


# Who may assume the roles of the template (their AssumeRolePolicyDocument says the same).
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "ecs-tasks.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def aws_managed_policy(name):
    """The document of the AWS managed policy `name`, from moto's copy of AWS's."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data as data

    start = data.index(f'"{name}":') + len(name) + 3
    entry, _ = json.JSONDecoder().raw_decode(data, start)
    return entry["Document"]


def create_and_assume_role(spec):
    """The devstack's provisioning (what CloudFormation does in AWS): the role with its
    policies, each checked by moto's IAM policy validator, and a session of it."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    iam = iam_backends[ACCOUNT]["aws"]
    name = spec["name"]
    try:
        role = iam.get_role(name)
    except Exception:
        role = iam.create_role(name, TRUST, "/", None, "", [], "43200")
    for policy_name, document in spec["policies"].items():
        iam.put_role_policy(name, policy_name, json.dumps(document))
    # AWS managed policies, as inline copies named after them: moto would parse its whole
    # copy of AWS's managed policies (about half a second) in every local stack.
    for arn in spec["managed"]:
        policy_name = arn.rsplit("/", 1)[-1]
        iam.put_role_policy(name, policy_name, json.dumps(aws_managed_policy(policy_name)))
    # A test's mutation: the statements named (by Sid) leave every inline policy of the role.
    revoked = set(spec.get("revoke", []))
    for policy_name, document in list(role.policies.items()) if revoked else []:
        document = json.loads(document) if isinstance(document, str) else document
        document["Statement"] = [
            statement for statement in document["Statement"] if statement.get("Sid") not in revoked
        ]
        iam.put_role_policy(name, policy_name, json.dumps(document))
    _changed(name)
    session = sts_backends[ACCOUNT]["aws"].assume_role(
        "eu-west-2", spec["session"], role.arn, None, 43200, None
    )
    return {
        "role_arn": role.arn,
        "access_key_id": session.access_key_id,
        "secret_access_key": session.secret_access_key,
        "session_token": session.session_token,
    }


def read_body(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def s3_error(status, code, message, start_response, head=False):
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [b"" if head else body]


def access_denied(service, text, start_response):
    """The denial as the service's protocol spells it, so the SDK sees AccessDenied."""
    message = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if service == "s3":
        return s3_error("403 Forbidden", "AccessDenied", message, start_response)
    if service == "cloudfront":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{message}</Message></Error></ErrorResponse>"
        ).encode()
        start_response("403 Forbidden", [("Content-Type", "text/xml")])
        return [body]
    code = "AccessDeniedException"
    body = json.dumps({"__type": code, "message": text, "Message": text}).encode()
    start_response(
        "400 Bad Request" if service in JSON_SERVICES else "403 Forbidden",
        [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)],
    )
    return [body]


def install():
    """Wraps moto_server's WSGI application (moto.server.DomainDispatcherApplication)."""
    from moto import server

    dispatcher = server.DomainDispatcherApplication
    original_call = dispatcher.__call__
    enforcers = {}

    def enforced(self, environ, start_response):
        enforcer = enforcers.get(id(self))
        if enforcer is None:
            enforcer = enforcers.setdefault(id(self), Enforcer(lambda e, s: original_call(self, e, s)))
        return enforcer(environ, start_response)

    dispatcher.__call__ = enforced
