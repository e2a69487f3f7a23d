"""Getting a disk image into S3 the way ImportInstance reads it, and out again.

- `image`: `upload_image` (the one uploader: the pipeline calls it) and its `UploadOptions`;
- `parts`: the part sender and the thread pool that runs it (integrity, resume, cancel);
- `presign`: the manifest's presigned URLs, and trying them as EC2 will;
- `bucket`: the bucket's region (or creating it), the temporary-credentials warning;
- `delete`: parsing S3 URLs, deleting an upload's parts and manifest.

Import-light like the rest of the core: boto3 and botocore load only when a function runs.
"""

from tui.core.upload.bucket import check_bucket, create_bucket, temporary_credentials_warning
from tui.core.upload.delete import DeleteReport, delete_upload, parse_s3_url
from tui.core.upload.image import UploadOptions, UploadResult, upload_image
from tui.core.upload.parts import Cancelled, UploadProgress, is_integrity_error

__all__ = [
    "Cancelled",
    "DeleteReport",
    "UploadOptions",
    "UploadProgress",
    "UploadResult",
    "check_bucket",
    "create_bucket",
    "delete_upload",
    "is_integrity_error",
    "parse_s3_url",
    "temporary_credentials_warning",
    "upload_image",
]
