"""The bucket an upload goes to, and the credentials it is presigned with.

EC2 reads the parts from the import region only ("The given S3 bucket is not local to the
Region"), and the manifest's presigned URLs die with temporary credentials: both are checked
before the first byte is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn, cast

from tui.core.errors import AwsError, InputError

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType


def check_bucket(s3: S3Client, bucket: str, region: str, create: bool = False) -> bool:
    """The bucket exists and is in `region`. With `create`, a missing bucket is made there.
    True if it was created."""
    from botocore.exceptions import ClientError

    try:
        response = s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404 or exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
            if not create:
                raise InputError(
                    f"bucket {bucket!r} does not exist: create it in {region} first",
                    field="source.bucket",
                ) from None
            create_bucket(s3, bucket, region)
            return True
        if status == 403:
            raise AwsError(
                f"no access to bucket {bucket!r} (it may belong to another account)",
                code="AccessDenied",
            ) from None
        if status == 301:
            where = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            _wrong_region(bucket, where.get("x-amz-bucket-region", "another region"), region)
        raise
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    actual = headers.get("x-amz-bucket-region") or bucket_region(s3, bucket)
    if actual and actual != region:
        _wrong_region(bucket, actual, region)
    return False


def create_bucket(s3: S3Client, bucket: str, region: str) -> None:
    """Create `bucket` in `region`."""
    if region == "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
        s3.create_bucket(Bucket=bucket)
    else:
        constraint = cast("BucketLocationConstraintType", region)
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": constraint}
        )


def bucket_region(s3: S3Client, bucket: str) -> str | None:
    """Where the bucket is, by GetBucketLocation; None when S3 will not say."""
    try:
        constraint: str | None = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except Exception:
        return None
    # Legacy answers: none (or empty) means us-east-1, "EU" means eu-west-1.
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint


def _wrong_region(bucket: str, actual: str, region: str) -> NoReturn:
    raise InputError(
        f"bucket {bucket!r} is in {actual}, not in the import region {region}: EC2 would fail "
        "with 'The given S3 bucket is not local to the Region'; use a bucket in "
        f"{region} or import in {actual}",
        field="source.bucket",
    )


def temporary_credentials_warning(session: boto3.Session) -> str | None:
    """A warning when the credentials carry a session token (SSO, STS, instance roles):
    presigned URLs stop working when those credentials expire, possibly mid-conversion."""
    try:
        credentials = session.get_credentials()
        token = credentials.get_frozen_credentials().token if credentials is not None else None
    except Exception:
        return None
    if not token:
        return None
    return (
        "the AWS credentials are temporary (they carry a session token): the presigned URLs in "
        "the manifest stop working when they expire, and the import then fails; use long-term "
        "credentials for imports that run for hours"
    )
