"""moto_server, corrected where moto answers otherwise than AWS in a way a pipeline depends on.

The local stack (scripts/devstack.sh, tests/src/lib.rs) starts this instead of the venv's
moto_server; the arguments are moto_server's. Each correction names what AWS does, and has an
end-to-end test that fails under moto's own answer.

- DynamoDB ImportTable, format DYNAMODB_JSON: AWS reads one `{"Item": {...}}` JSON object per
  line ("DynamoDB data import from Amazon S3: formats"). moto 5 parses the file with
  py_partiql_parser's JsonParser, which cuts a string at `'` or `\\"`, so ordinary text imports
  short. Here each line is read with the standard JSON parser
  (tests/tests/dynamodb_loader/input.rs, text_with_quotes_backslashes_newlines_emoji_and_cjk_imports_exactly).
  An import can also stay IN_PROGRESS for LANDFALL_IMPORT_SECONDS first, as AWS's run for
  minutes (an_import_outlasting_its_invocation_is_followed_by_a_delayed_message_not_a_receive).
  ImportTable's ClientToken makes a repeated call return the first call's import, as in AWS;
  moto started a second import into the same table, which failed "Table already exists"
  (the soak found it: two deliveries of one file, the second taking over a stale claim)
  (tests/tests/dynamodb_loader/import.rs, an_import_table_call_repeated_with_its_client_token_starts_one_import).

- SES sandbox: a new account's SES sends only to verified identities, recipients included,
  and refuses the message otherwise with MessageRejected ("Email address is not verified. The
  following identities failed the check in region …"; SES developer guide, "Request
  production access"). moto checks the sender only. Here every recipient must be verified too
  (the devstack verifies the stack's own recipients, as a user in the sandbox does); the
  mailbox simulator's addresses are accepted unverified, as in AWS (SES developer guide,
  "Using the mailbox simulator"), which make smoke's datasets mail
  (tests/tests/local_stack/main.rs, an_unverified_recipient_is_refused_as_in_the_ses_sandbox).

- CloudFront invalidations: each is `InProgress` for a while, then `Completed`; a distribution
  takes at most 3,000 file paths and 15 wildcard paths in invalidations in progress and refuses
  more with TooManyInvalidationsInProgress (CloudFront developer guide, "Concurrent
  invalidation request maximum"); a repeated CallerReference returns the invalidation it made,
  or, with other paths, InvalidationBatchAlreadyExists (API reference, CreateInvalidation).
  moto completes every invalidation at once, so no limit is ever reached, and makes a new one
  for each call. Here an invalidation is in progress for LANDFALL_INVALIDATION_SECONDS
  (default 10)
  (tests/tests/cdn_invalidator.rs, the_in_progress_limit_waits_and_the_change_is_invalidated_after).

- S3 event notifications: on a bucket with versioning enabled each record names the object's
  `versionId` (S3 user guide, "Event message structure"), which the pipelines read their file
  by. moto leaves it out, so every local test took the path of an unversioned bucket. Here it is
  added; a suspended or unversioned bucket's records stay without it
  (tests/tests/local_stack/main.rs, a_versioned_buckets_notification_names_the_version).

And IAM, which moto does not enforce faithfully (conditions, resource matching): every request
signed with a role's credentials is authorised against the role's policies
(scripts/local_iam/enforce.py).
"""

import json
import os
import re
import sys
import threading
import time

import py_partiql_parser
from moto.cloudfront.exceptions import CloudFrontException
from moto.cloudfront.models import CloudFrontBackend, Invalidation
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.dynamodb.models.table_import import TableImport
from moto.dynamodb.responses import DynamoHandler
from moto.s3 import notifications as s3_notifications
from moto.ses.exceptions import MessageRejectedError
from moto.ses.models import SESBackend
from moto.server import main

from local_iam import enforce


class _DynamoJsonLines:
    """Stands in for py_partiql_parser.JsonParser while an import reads its files."""

    @staticmethod
    def parse(original, *args, **kwargs):
        return [json.loads(line) for line in original.splitlines() if line.strip()]


_moto_import = TableImport._process_s3_files
# The parser is swapped module-wide (moto imports it by name inside the method), so imports
# take turns; nothing else the pipelines call uses it.
_swapping = threading.Lock()


# An import stays IN_PROGRESS this long before it reads its files (LANDFALL_IMPORT_SECONDS, 0 by
# default): AWS's take minutes at the least, so a test can make one outlast an invocation.
_IMPORT_SECONDS = float(os.environ.get("LANDFALL_IMPORT_SECONDS", "0"))


def _import_as_aws_reads_it(self, s3_backend, bucket):
    time.sleep(_IMPORT_SECONDS)
    with _swapping:
        saved = py_partiql_parser.JsonParser
        py_partiql_parser.JsonParser = _DynamoJsonLines
        try:
            return _moto_import(self, s3_backend, bucket)
        finally:
            py_partiql_parser.JsonParser = saved


TableImport._process_s3_files = _import_as_aws_reads_it

# ImportTable's ClientToken makes the call idempotent: a repeated call with the same token
# (within 8 hours) returns the import the first one started, and one with other parameters
# fails with ImportConflictException (DynamoDB API reference, ImportTable). moto ignores the
# token and starts a second import, whose table then already exists.
_IMPORT_TOKEN_SECONDS = 8 * 3600
_import_tokens = {}
_import_tokens_lock = threading.Lock()
_moto_import_table = DynamoHandler.import_table


def _import_table_once_per_token(self):
    token = self.body.get("ClientToken")
    if not token:
        return _moto_import_table(self)
    request = {k: v for k, v in self.body.items() if k != "ClientToken"}
    key = (self.current_account, self.region, token)
    backend = self.dynamodb_backend
    with _import_tokens_lock:
        seen = _import_tokens.get(key)
        if seen and time.time() - seen["at"] < _IMPORT_TOKEN_SECONDS:
            if seen["request"] != request:
                raise JsonRESTError(
                    "com.amazonaws.dynamodb.v20120810#ImportConflictException",
                    f"ClientToken {token} was used for an import with other parameters",
                )
            table_import = backend.describe_import(seen["arn"])
            return ActionResult({"ImportTableDescription": table_import.response()})
        before = set(backend.table_imports)
        result = _moto_import_table(self)
        started = [arn for arn in backend.table_imports if arn not in before]
        if started:
            _import_tokens[key] = {"request": request, "arn": started[0], "at": time.time()}
        return result


DynamoHandler.import_table = _import_table_once_per_token


def _mailbox_simulator(address):
    return address.rsplit("@", 1)[-1].lower() == "simulator.amazonses.com"


def _sandboxed(send):
    def send_to_verified_only(self, *args, **kwargs):
        destinations = kwargs.get("destinations")
        if destinations is None:
            destinations = next(a for a in args if isinstance(a, (dict, list)))
        addresses = (
            [a for group in destinations.values() for a in group]
            if isinstance(destinations, dict)
            else list(destinations)
        )
        unverified = [a for a in addresses
                      if not self._is_verified_address(a) and not _mailbox_simulator(a)]
        if unverified:
            self.rejected_messages_count += 1
            raise MessageRejectedError(
                "Email address is not verified. The following identities failed the check in "
                f"region {self.region_name.upper()}: {', '.join(unverified)}"
            )
        return send(self, *args, **kwargs)

    return send_to_verified_only


_INVALIDATION_SECONDS = float(os.environ.get("LANDFALL_INVALIDATION_SECONDS", "10"))
_MAX_FILE_PATHS_IN_PROGRESS = 3000
_MAX_WILDCARD_PATHS_IN_PROGRESS = 15


def _invalidation_status(self):
    created = getattr(self, "_landfall_created", None)
    if created is not None and time.monotonic() - created < _INVALIDATION_SECONDS:
        return "InProgress"
    return "Completed"


def _status_is_computed(self, value):
    self._landfall_created = time.monotonic()


Invalidation.status = property(_invalidation_status, _status_is_computed)


def _limited(create):
    def create_within_limits(self, dist_id, paths, caller_ref):
        made = self.invalidations.get(dist_id) or []
        for earlier in made:
            if earlier.caller_ref == caller_ref:
                if list(earlier.paths) == list(paths):
                    return earlier
                raise CloudFrontException(
                    "InvalidationBatchAlreadyExists",
                    "The CallerReference you are using to create an invalidation batch was used "
                    "before for a different batch.",
                )
        in_progress = [p for i in made if i.status == "InProgress" for p in i.paths]
        wildcards = sum(p.endswith("*") for p in in_progress) + sum(p.endswith("*") for p in paths)
        files = len(in_progress) + len(paths) - wildcards
        if wildcards > _MAX_WILDCARD_PATHS_IN_PROGRESS or files > _MAX_FILE_PATHS_IN_PROGRESS:
            raise CloudFrontException(
                "TooManyInvalidationsInProgress",
                "Processing your request will cause you to exceed the maximum number of "
                "in-progress wildcard invalidations.",
            )
        return create(self, dist_id, paths, caller_ref)

    return create_within_limits


CloudFrontBackend.create_invalidation = _limited(CloudFrontBackend.create_invalidation)
_moto_s3_event = s3_notifications._get_s3_event


def _s3_event_as_aws_sends_it(event_name, bucket, key, notification_id):
    event = _moto_s3_event(event_name, bucket, key, notification_id)
    if bucket.is_versioned and key.version_id:
        for record in event["Records"]:
            record["s3"]["object"]["versionId"] = key.version_id
    return event


s3_notifications._get_s3_event = _s3_event_as_aws_sends_it
SESBackend.send_email = _sandboxed(SESBackend.send_email)
SESBackend.send_raw_email = _sandboxed(SESBackend.send_raw_email)
enforce.install()

if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
    sys.exit(main())
