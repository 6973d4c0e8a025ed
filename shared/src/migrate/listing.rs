//! A store's listing as one stream of objects.

use futures::stream::{self, BoxStream, StreamExt};

use crate::store::{ListRequest, ListedObject, ObjectStore, StoreError, StoreErrorKind};

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingOptions {
    /// Only keys that start with this.
    pub prefix: String,
    /// Only keys after this one (UTF-8 byte order): where an interrupted job resumes.
    pub start_after: Option<String>,
    /// Keys per page (`None`: the store's default, 1,000 on S3 and OSS).
    pub page_size: Option<u32>,
}

struct State<S> {
    store: S,
    bucket: String,
    options: ListingOptions,
    next: Option<tokio::task::JoinHandle<Result<crate::store::ListPage, StoreError>>>,
    last: Option<String>,
}

fn fetch<S: ObjectStore + Clone + 'static>(
    store: &S,
    bucket: &str,
    options: &ListingOptions,
    continuation: Option<String>,
) -> tokio::task::JoinHandle<Result<crate::store::ListPage, StoreError>> {
    let store = store.clone();
    let bucket = bucket.to_owned();
    let request = ListRequest {
        prefix: options.prefix.clone(),
        start_after: options.start_after.clone(),
        continuation,
        max_keys: options.page_size,
    };
    tokio::spawn(async move { store.list_objects(&bucket, &request).await })
}

/// Every object of `bucket` that `options` select, in UTF-8 byte order of their keys. The next
/// page is requested as soon as one arrives, so listing overlaps with whatever consumes the
/// stream; at most two pages are held. A key that is not after the one before it ends the
/// stream with [`StoreErrorKind::InvalidResponse`].
pub fn list_objects<S>(
    store: S,
    bucket: &str,
    options: ListingOptions,
) -> BoxStream<'static, Result<ListedObject, StoreError>>
where
    S: ObjectStore + Clone + 'static,
{
    let first = fetch(&store, bucket, &options, None);
    let state = State {
        store,
        bucket: bucket.to_owned(),
        options,
        next: Some(first),
        last: None,
    };
    stream::try_unfold(state, |mut state| async move {
        let Some(handle) = state.next.take() else {
            return Ok(None);
        };
        let page = handle.await.map_err(|e| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                "ListObjects",
                state.bucket.clone(),
                format!("the listing task failed: {e}"),
            )
        })??;
        if let Some(token) = page.next.clone() {
            state.next = Some(fetch(
                &state.store,
                &state.bucket,
                &state.options,
                Some(token),
            ));
        }
        for object in &page.objects {
            if let Some(last) = &state.last
                && object.key.as_str() <= last.as_str()
            {
                return Err(StoreError::new(
                    StoreErrorKind::InvalidResponse,
                    "ListObjects",
                    state.bucket.clone(),
                    format!(
                        "the listing is not in UTF-8 byte order: {:?} came after {last:?}",
                        object.key
                    ),
                ));
            }
            state.last = Some(object.key.clone());
        }
        Ok(Some((
            stream::iter(page.objects.into_iter().map(Ok)),
            state,
        )))
    })
    .map(|page| match page {
        Ok(objects) => objects.left_stream(),
        Err(e) => stream::once(async move { Err(e) }).right_stream(),
    })
    .flatten()
    .boxed()
}
