//! [`UploadGuard`]: no multipart upload is left behind, whatever path a copy takes.

use crate::store::ObjectSink;

/// Aborts a multipart upload unless disarmed: explicitly with [`UploadGuard::abort`], or from a
/// spawned task when dropped armed (a panic, an early return, a cancelled future).
pub(super) struct UploadGuard<D: ObjectSink + Clone + 'static> {
    sink: D,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl<D: ObjectSink + Clone + 'static> UploadGuard<D> {
    pub(super) fn new(sink: D, bucket: &str, key: &str, upload_id: &str) -> Self {
        Self {
            sink,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            armed: true,
        }
    }

    /// Aborts the upload now (trying twice), logging a failure.
    pub(super) async fn abort(mut self) {
        self.armed = false;
        for attempt in 1..=2 {
            match self
                .sink
                .abort_multipart_upload(&self.bucket, &self.key, &self.upload_id)
                .await
            {
                Ok(()) => return,
                Err(e) => tracing::warn!(
                    upload_id = %self.upload_id, attempt, error = %e,
                    "aborting the multipart upload failed"
                ),
            }
        }
    }

    /// Leaves the upload alone (it was completed, or is handed to a continuation).
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl<D: ObjectSink + Clone + 'static> Drop for UploadGuard<D> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(upload_id = %self.upload_id, "multipart upload left behind: no runtime to abort it");
            return;
        };
        let sink = self.sink.clone();
        let (bucket, key, upload_id) = (
            std::mem::take(&mut self.bucket),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.upload_id),
        );
        runtime.spawn(async move {
            if let Err(e) = sink.abort_multipart_upload(&bucket, &key, &upload_id).await {
                tracing::warn!(%upload_id, error = %e, "aborting an abandoned multipart upload failed");
            }
        });
    }
}
