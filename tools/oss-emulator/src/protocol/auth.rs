//! Signature V4 verification: the credential must exist (with its STS token if it has one),
//! `x-oss-date` must be within 15 minutes of the server's clock, the scope must name the
//! request's date and the emulator's region, and the signature recomputed from the decoded
//! request must match. See
//! <https://www.alibabacloud.com/help/en/oss/developer-reference/recommend-to-use-signature-version-4>.

use chrono::Utc;
use http::StatusCode;
use http::header::AUTHORIZATION;
use transfer::oss::signer::{self, Authorization, SignableRequest};

use crate::error::OssError;
use crate::request::Ctx;
use crate::state::State;

/// How far `x-oss-date` may be from the server's clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// 403 with `code` and `message`.
fn forbidden(code: &'static str, message: impl Into<String>) -> OssError {
    OssError::new(StatusCode::FORBIDDEN, code, message)
}

/// Checks the request's `Authorization` header.
pub(crate) fn authenticate(state: &State, ctx: &Ctx) -> Result<(), OssError> {
    let Some(value) = ctx.headers.get(AUTHORIZATION) else {
        return Err(forbidden(
            "AccessDenied",
            "You have no right to access this object because of bucket acl.",
        ));
    };
    let value = value.to_str().unwrap_or_default();
    let auth = Authorization::parse(value)
        .map_err(|e| OssError::invalid_argument(format!("Authorization header is invalid: {e}")))?;
    let credential = state.credentials(&auth.access_key_id).ok_or_else(|| {
        forbidden(
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
    })?;
    if let Some(token) = &credential.security_token {
        match ctx.header("x-oss-security-token") {
            Some(sent) if sent == token => {}
            Some(_) => {
                return Err(forbidden(
                    "InvalidSecurityToken",
                    "The security token you provided is invalid.",
                ));
            }
            None => {
                return Err(forbidden(
                    "InvalidSecurityToken",
                    "The request was signed with temporary credentials but carries no x-oss-security-token.",
                ));
            }
        }
    }
    let datetime = ctx
        .header("x-oss-date")
        .ok_or_else(|| forbidden("AccessDenied", "x-oss-date is missing."))?;
    let time = signer::parse_datetime(datetime)
        .ok_or_else(|| forbidden("AccessDenied", "x-oss-date is not YYYYMMDDTHHMMSSZ."))?;
    if (Utc::now() - time).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(forbidden(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    if auth.region != state.region || !datetime.starts_with(&auth.date) {
        return Err(forbidden(
            "SignatureDoesNotMatch",
            format!(
                "The credential scope {}/{} does not match the request date or the region {}.",
                auth.date, auth.region, state.region
            ),
        ));
    }
    let request = SignableRequest {
        method: ctx.method.as_str(),
        bucket: ctx.bucket.as_deref(),
        key: ctx.key.as_deref(),
        query: &ctx.query,
        headers: &ctx.headers,
    };
    let expected = signer::signature(
        &credential.access_key_secret,
        datetime,
        &state.region,
        &request,
        &auth.additional_headers,
    );
    if expected != auth.signature {
        return Err(forbidden(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    Ok(())
}
