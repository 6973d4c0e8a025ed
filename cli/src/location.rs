//! Bucket locations: `oss://bucket/prefix` and `s3://bucket/prefix`.

use std::fmt;
use std::str::FromStr;

/// Which service a location is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Alibaba Cloud OSS.
    Oss,
    /// Amazon S3.
    S3,
}

impl Service {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Oss => "oss",
            Self::S3 => "s3",
        }
    }
}

/// A bucket and a key prefix on a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The service.
    pub service: Service,
    /// The bucket.
    pub bucket: String,
    /// The key prefix (may be empty); keys are compared after it.
    pub prefix: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}/{}",
            self.service.scheme(),
            self.bucket,
            self.prefix
        )
    }
}

impl FromStr for Location {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("{url:?} is not a location such as oss://bucket/prefix or s3://bucket/prefix")
        })?;
        let service = match scheme {
            "oss" => Service::Oss,
            "s3" => Service::S3,
            other => {
                return Err(format!("{url:?}: the scheme {other:?} is not oss or s3"));
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        transfer::task::check_bucket_name(bucket)
            .map_err(|reason| format!("{url:?}: the bucket name {bucket:?} {reason}"))?;
        Ok(Self {
            service,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes_with_and_without_prefix() {
        let l: Location = "oss://photos/2024/".parse().expect("valid");
        assert_eq!(
            (l.service, l.bucket.as_str(), l.prefix.as_str()),
            (Service::Oss, "photos", "2024/")
        );
        let l: Location = "s3://backup".parse().expect("valid");
        assert_eq!(
            (l.service, l.bucket.as_str(), l.prefix.as_str()),
            (Service::S3, "backup", "")
        );
        assert_eq!(l.to_string(), "s3://backup/");
    }

    #[test]
    fn refuses_other_schemes_and_bad_buckets() {
        assert!(
            "gs://b/x"
                .parse::<Location>()
                .unwrap_err()
                .contains("not oss or s3")
        );
        assert!(
            "photos/2024"
                .parse::<Location>()
                .unwrap_err()
                .contains("not a location")
        );
        assert!("s3://Bad_Bucket/x".parse::<Location>().is_err());
    }
}
