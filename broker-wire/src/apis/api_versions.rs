//! ApiVersions: the APIs and versions served.

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::SUPPORTED_APIS;

/// Kafka's `UNSUPPORTED_VERSION` error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// The versions served. Tagged fields that would hold their defaults are not sent (clients
/// with librdkafka 2.0 misread them).
pub(super) fn respond() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        SUPPORTED_APIS
            .iter()
            .map(|&(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// The answer to an ApiVersions request of a version not served: version 0, with
/// `UNSUPPORTED_VERSION` and, as Kafka answers it, the versions of ApiVersions alone, for the
/// client to ask again at one of them.
pub(super) fn unsupported(correlation_id: i32) -> BytesMut {
    let mut out = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut response = respond().with_error_code(UNSUPPORTED_VERSION);
    response
        .api_keys
        .retain(|v| v.api_key == kafka_protocol::messages::ApiKey::ApiVersions as i16);
    // Version 0 of both is plain fixed fields: encoding cannot fail.
    if header.encode(&mut out, 0).is_err() || response.encode(&mut out, 0).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;

    #[test]
    fn every_served_api_is_listed_with_its_versions() {
        let response = respond();
        assert_eq!(response.api_keys.len(), SUPPORTED_APIS.len());
        let versions = response
            .api_keys
            .iter()
            .find(|v| v.api_key == ApiKey::ApiVersions as i16)
            .unwrap();
        assert_eq!((versions.min_version, versions.max_version), (0, 4));
        assert!(!unsupported(7).is_empty());
    }
}
