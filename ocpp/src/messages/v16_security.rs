//! The 11 messages of the OCPP 1.6 security extension (Security Whitepaper edition 3).
//!
//! Written from the vendored schemas (`schemas/v16/<Action>.json` and `<Action>Response.json`),
//! in the style of `rust-ocpp`'s 1.6 types: camelCase fields, optional fields left out when
//! absent, enums spelled exactly as on the wire. Type names are the schema's with the
//! `EnumType`/`Type` suffix dropped. Lengths and other limits are the schema's job: validate
//! first, then deserialise.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// --- Shared types -----------------------------------------------------------------------------

/// Hash algorithm of a [`CertificateHashData`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashAlgorithm {
    /// SHA-256.
    #[serde(rename = "SHA256")]
    Sha256,
    /// SHA-384.
    #[serde(rename = "SHA384")]
    Sha384,
    /// SHA-512.
    #[serde(rename = "SHA512")]
    Sha512,
}

/// Identifies a certificate by the hashes of its issuer and its serial number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateHashData {
    /// Algorithm of both hashes.
    pub hash_algorithm: HashAlgorithm,
    /// Hex hash of the issuer's distinguished name (at most 128 characters).
    pub issuer_name_hash: String,
    /// Hex hash of the issuer's public key (at most 128 characters).
    pub issuer_key_hash: String,
    /// Hex serial number of the certificate (at most 40 characters).
    pub serial_number: String,
}

/// Which kind of root certificate is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CertificateUse {
    /// Root of the central system's TLS certificate.
    CentralSystemRootCertificate,
    /// Root of the manufacturer's firmware-signing certificate.
    ManufacturerRootCertificate,
}

/// Accepted or rejected, as answered to SignCertificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GenericStatus {
    /// The request was accepted.
    Accepted,
    /// The request was rejected.
    Rejected,
}

// --- CertificateSigned (central system -> charge point) ----------------------------------------

/// CertificateSigned.req: the signed certificate chain answering a SignCertificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSignedRequest {
    /// PEM chain, leaf first (at most 10000 characters).
    pub certificate_chain: String,
}

/// Status of a CertificateSigned.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CertificateSignedStatus {
    /// The chain was installed.
    Accepted,
    /// The chain was refused (e.g. it did not verify).
    Rejected,
}

/// CertificateSigned.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSignedResponse {
    /// Whether the chain was installed.
    pub status: CertificateSignedStatus,
}

// --- DeleteCertificate (central system -> charge point) ----------------------------------------

/// DeleteCertificate.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCertificateRequest {
    /// The certificate to delete.
    pub certificate_hash_data: CertificateHashData,
}

/// Status of a DeleteCertificate.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeleteCertificateStatus {
    /// The certificate was deleted.
    Accepted,
    /// The deletion failed.
    Failed,
    /// No such certificate.
    NotFound,
}

/// DeleteCertificate.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCertificateResponse {
    /// Outcome of the deletion.
    pub status: DeleteCertificateStatus,
}

// --- ExtendedTriggerMessage (central system -> charge point) -----------------------------------

/// A message ExtendedTriggerMessage can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageTrigger {
    /// A BootNotification.
    BootNotification,
    /// A LogStatusNotification.
    LogStatusNotification,
    /// A FirmwareStatusNotification.
    FirmwareStatusNotification,
    /// A Heartbeat.
    Heartbeat,
    /// A MeterValues.
    MeterValues,
    /// A SignCertificate for the charge point's own certificate.
    SignChargePointCertificate,
    /// A StatusNotification.
    StatusNotification,
}

/// ExtendedTriggerMessage.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendedTriggerMessageRequest {
    /// The message to send.
    pub requested_message: MessageTrigger,
    /// The connector it concerns, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<u32>,
}

/// Status of an ExtendedTriggerMessage.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TriggerMessageStatus {
    /// The message will be sent.
    Accepted,
    /// The message will not be sent.
    Rejected,
    /// The requested message is not implemented.
    NotImplemented,
}

/// ExtendedTriggerMessage.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtendedTriggerMessageResponse {
    /// Whether the message will be sent.
    pub status: TriggerMessageStatus,
}

// --- GetInstalledCertificateIds (central system -> charge point) -------------------------------

/// GetInstalledCertificateIds.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetInstalledCertificateIdsRequest {
    /// Which root certificates to list.
    pub certificate_type: CertificateUse,
}

/// Status of a GetInstalledCertificateIds.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GetInstalledCertificateStatus {
    /// Certificates are listed.
    Accepted,
    /// No certificate of that type is installed.
    NotFound,
}

/// GetInstalledCertificateIds.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetInstalledCertificateIdsResponse {
    /// Whether any certificate was found.
    pub status: GetInstalledCertificateStatus,
    /// The installed certificates (at least one when present).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_hash_data: Option<Vec<CertificateHashData>>,
}

// --- GetLog (central system -> charge point) ---------------------------------------------------

/// Which log GetLog asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogType {
    /// The diagnostics log.
    DiagnosticsLog,
    /// The security log.
    SecurityLog,
}

/// Where to upload a log and which period it should cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogParameters {
    /// Upload URL (at most 512 characters).
    pub remote_location: String,
    /// Oldest entry wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_timestamp: Option<DateTime<Utc>>,
    /// Newest entry wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_timestamp: Option<DateTime<Utc>>,
}

/// GetLog.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogRequest {
    /// Upload location and period.
    pub log: LogParameters,
    /// Which log.
    pub log_type: LogType,
    /// Id echoed in the LogStatusNotifications of this upload.
    pub request_id: i32,
    /// How many times to retry a failed upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    /// Seconds between retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<i32>,
}

/// Status of a GetLog.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogStatus {
    /// The upload will start.
    Accepted,
    /// The upload will not happen.
    Rejected,
    /// Accepted, and an upload already under way was cancelled for it.
    AcceptedCanceled,
}

/// GetLog.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogResponse {
    /// Whether the upload will happen.
    pub status: LogStatus,
    /// Name of the file that will be uploaded (at most 255 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

// --- InstallCertificate (central system -> charge point) ---------------------------------------

/// InstallCertificate.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallCertificateRequest {
    /// Which kind of root certificate this is.
    pub certificate_type: CertificateUse,
    /// PEM certificate (at most 5500 characters).
    pub certificate: String,
}

/// Status of an InstallCertificate.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InstallCertificateStatus {
    /// Installed.
    Accepted,
    /// Installation failed.
    Failed,
    /// Refused (e.g. invalid certificate).
    Rejected,
}

/// InstallCertificate.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallCertificateResponse {
    /// Outcome of the installation.
    pub status: InstallCertificateStatus,
}

// --- LogStatusNotification (charge point -> central system) ------------------------------------

/// Progress of a log upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UploadLogStatus {
    /// The GetLog request could not be understood.
    BadMessage,
    /// No upload in progress (only in answer to a trigger).
    Idle,
    /// The requested operation is not supported.
    NotSupportedOperation,
    /// The server refused the upload.
    PermissionDenied,
    /// The upload finished.
    Uploaded,
    /// The upload failed.
    UploadFailure,
    /// The upload is in progress.
    Uploading,
}

/// LogStatusNotification.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStatusNotificationRequest {
    /// Progress of the upload.
    pub status: UploadLogStatus,
    /// The GetLog's `requestId` (absent when answering a trigger while idle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<i32>,
}

/// LogStatusNotification.conf (empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStatusNotificationResponse {}

// --- SecurityEventNotification (charge point -> central system) --------------------------------

/// SecurityEventNotification.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEventNotificationRequest {
    /// Event type, one of the whitepaper's list or vendor-defined (at most 50 characters).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    /// Free-form detail (at most 255 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tech_info: Option<String>,
}

/// SecurityEventNotification.conf (empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEventNotificationResponse {}

// --- SignCertificate (charge point -> central system) ------------------------------------------

/// SignCertificate.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignCertificateRequest {
    /// PEM certificate signing request (at most 5500 characters).
    pub csr: String,
}

/// SignCertificate.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignCertificateResponse {
    /// Whether the CSR will be processed (the certificate follows in a CertificateSigned).
    pub status: GenericStatus,
}

// --- SignedFirmwareStatusNotification (charge point -> central system) -------------------------

/// Progress of a signed firmware update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FirmwareStatus {
    /// Firmware downloaded.
    Downloaded,
    /// Download failed.
    DownloadFailed,
    /// Downloading.
    Downloading,
    /// Download will start later.
    DownloadScheduled,
    /// Download paused.
    DownloadPaused,
    /// Nothing in progress.
    Idle,
    /// Installation failed.
    InstallationFailed,
    /// Installing.
    Installing,
    /// Installed.
    Installed,
    /// Rebooting to install.
    InstallRebooting,
    /// Installation will start later.
    InstallScheduled,
    /// The downloaded firmware did not verify.
    InstallVerificationFailed,
    /// The firmware's signature is invalid.
    InvalidSignature,
    /// The firmware's signature verified.
    SignatureVerified,
}

/// SignedFirmwareStatusNotification.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedFirmwareStatusNotificationRequest {
    /// Progress of the update.
    pub status: FirmwareStatus,
    /// The SignedUpdateFirmware's `requestId` (absent when idle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<i32>,
}

/// SignedFirmwareStatusNotification.conf (empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedFirmwareStatusNotificationResponse {}

// --- SignedUpdateFirmware (central system -> charge point) -------------------------------------

/// The firmware image to install and how to verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firmware {
    /// Download URL (at most 512 characters).
    pub location: String,
    /// When to download.
    pub retrieve_date_time: DateTime<Utc>,
    /// When to install (as soon as possible when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_date_time: Option<DateTime<Utc>>,
    /// PEM certificate that signed the firmware (at most 5500 characters).
    pub signing_certificate: String,
    /// Base64 signature of the firmware (at most 800 characters).
    pub signature: String,
}

/// SignedUpdateFirmware.req.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedUpdateFirmwareRequest {
    /// How many times to retry a failed download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    /// Seconds between retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<i32>,
    /// Id echoed in the SignedFirmwareStatusNotifications of this update.
    pub request_id: i32,
    /// The firmware to install.
    pub firmware: Firmware,
}

/// Status of a SignedUpdateFirmware.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpdateFirmwareStatus {
    /// The update will happen.
    Accepted,
    /// The update will not happen.
    Rejected,
    /// Accepted, and an update already under way was cancelled for it.
    AcceptedCanceled,
    /// The signing certificate is invalid.
    InvalidCertificate,
    /// The signing certificate is revoked.
    RevokedCertificate,
}

/// SignedUpdateFirmware.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedUpdateFirmwareResponse {
    /// Whether the update will happen.
    pub status: UpdateFirmwareStatus,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::schema::{self, Direction};
    use crate::Version;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    /// Validates `sample` against the schema, reads it as `T`, writes it back, and expects the
    /// same JSON: proves field names, optionality and enum spellings match the schema.
    fn round_trip<T: Serialize + DeserializeOwned>(action: &str, direction: Direction, sample: Value) {
        schema::validate(Version::V16, action, direction, &sample)
            .unwrap_or_else(|v| panic!("{action} {direction:?} sample invalid: {v}"));
        let typed: T = serde_json::from_value(sample.clone())
            .unwrap_or_else(|e| panic!("{action} {direction:?} does not deserialise: {e}"));
        let back = serde_json::to_value(&typed).expect("serialises");
        assert_eq!(back, sample, "{action} {direction:?} changed in the round trip");
        schema::validate(Version::V16, action, direction, &back)
            .unwrap_or_else(|v| panic!("{action} {direction:?} output invalid: {v}"));
    }

    fn hash_data() -> Value {
        json!({
            "hashAlgorithm": "SHA256",
            "issuerNameHash": "9f2a4c61b0a1e7c0de",
            "issuerKeyHash": "7d1e0c2f99ab",
            "serialNumber": "0a3f"
        })
    }

    #[test]
    fn every_security_message_round_trips_and_validates() {
        use Direction::{Request as Req, Response as Res};
        round_trip::<CertificateSignedRequest>(
            "CertificateSigned",
            Req,
            json!({"certificateChain": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}),
        );
        round_trip::<CertificateSignedResponse>("CertificateSigned", Res, json!({"status": "Rejected"}));
        round_trip::<DeleteCertificateRequest>("DeleteCertificate", Req, json!({"certificateHashData": hash_data()}));
        round_trip::<DeleteCertificateResponse>("DeleteCertificate", Res, json!({"status": "NotFound"}));
        round_trip::<ExtendedTriggerMessageRequest>(
            "ExtendedTriggerMessage",
            Req,
            json!({"requestedMessage": "SignChargePointCertificate", "connectorId": 0}),
        );
        round_trip::<ExtendedTriggerMessageRequest>(
            "ExtendedTriggerMessage",
            Req,
            json!({"requestedMessage": "StatusNotification"}),
        );
        round_trip::<ExtendedTriggerMessageResponse>(
            "ExtendedTriggerMessage",
            Res,
            json!({"status": "NotImplemented"}),
        );
        round_trip::<GetInstalledCertificateIdsRequest>(
            "GetInstalledCertificateIds",
            Req,
            json!({"certificateType": "ManufacturerRootCertificate"}),
        );
        round_trip::<GetInstalledCertificateIdsResponse>(
            "GetInstalledCertificateIds",
            Res,
            json!({"status": "Accepted", "certificateHashData": [hash_data()]}),
        );
        round_trip::<GetInstalledCertificateIdsResponse>(
            "GetInstalledCertificateIds",
            Res,
            json!({"status": "NotFound"}),
        );
        round_trip::<GetLogRequest>(
            "GetLog",
            Req,
            json!({
                "log": {
                    "remoteLocation": "https://logs.example.com/upload",
                    "oldestTimestamp": "2024-05-01T00:00:00Z",
                    "latestTimestamp": "2024-05-02T12:30:15.250Z"
                },
                "logType": "SecurityLog",
                "requestId": 42,
                "retries": 3,
                "retryInterval": 60
            }),
        );
        round_trip::<GetLogResponse>(
            "GetLog",
            Res,
            json!({"status": "AcceptedCanceled", "filename": "security-2024-05-02.log"}),
        );
        round_trip::<InstallCertificateRequest>(
            "InstallCertificate",
            Req,
            json!({"certificateType": "CentralSystemRootCertificate", "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}),
        );
        round_trip::<InstallCertificateResponse>("InstallCertificate", Res, json!({"status": "Failed"}));
        round_trip::<LogStatusNotificationRequest>(
            "LogStatusNotification",
            Req,
            json!({"status": "Uploading", "requestId": 42}),
        );
        round_trip::<LogStatusNotificationResponse>("LogStatusNotification", Res, json!({}));
        round_trip::<SecurityEventNotificationRequest>(
            "SecurityEventNotification",
            Req,
            json!({"type": "FirmwareUpdated", "timestamp": "2024-05-02T08:00:00Z", "techInfo": "v2.3.1"}),
        );
        round_trip::<SecurityEventNotificationResponse>("SecurityEventNotification", Res, json!({}));
        round_trip::<SignCertificateRequest>(
            "SignCertificate",
            Req,
            json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"}),
        );
        round_trip::<SignCertificateResponse>("SignCertificate", Res, json!({"status": "Accepted"}));
        round_trip::<SignedFirmwareStatusNotificationRequest>(
            "SignedFirmwareStatusNotification",
            Req,
            json!({"status": "InstallVerificationFailed", "requestId": 7}),
        );
        round_trip::<SignedFirmwareStatusNotificationResponse>("SignedFirmwareStatusNotification", Res, json!({}));
        round_trip::<SignedUpdateFirmwareRequest>(
            "SignedUpdateFirmware",
            Req,
            json!({
                "retries": 2,
                "retryInterval": 120,
                "requestId": 7,
                "firmware": {
                    "location": "https://fw.example.com/cp-2.3.1.bin",
                    "retrieveDateTime": "2024-05-03T01:00:00Z",
                    "installDateTime": "2024-05-03T02:00:00Z",
                    "signingCertificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                    "signature": "MEUCIQDx"
                }
            }),
        );
        round_trip::<SignedUpdateFirmwareResponse>(
            "SignedUpdateFirmware",
            Res,
            json!({"status": "RevokedCertificate"}),
        );
    }

    #[test]
    fn every_enum_value_of_the_schemas_deserialises() {
        // Reads each enum straight from the vendored schema, so a value we misspelt or forgot
        // shows up here rather than on a charger.
        fn all<T: DeserializeOwned + std::fmt::Debug>(file: &str, definition: &str) {
            let path = format!("{}/schemas/v16/{file}.json", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).expect("schema file");
            let schema: Value = serde_json::from_str(&text).expect("schema json");
            let values = schema["definitions"][definition]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: no enum {definition}"));
            for value in values {
                serde_json::from_value::<T>(value.clone())
                    .unwrap_or_else(|e| panic!("{file} {definition} {value}: {e}"));
            }
        }
        all::<CertificateSignedStatus>("CertificateSignedResponse", "CertificateSignedStatusEnumType");
        all::<HashAlgorithm>("DeleteCertificate", "HashAlgorithmEnumType");
        all::<DeleteCertificateStatus>("DeleteCertificateResponse", "DeleteCertificateStatusEnumType");
        all::<MessageTrigger>("ExtendedTriggerMessage", "MessageTriggerEnumType");
        all::<TriggerMessageStatus>("ExtendedTriggerMessageResponse", "TriggerMessageStatusEnumType");
        all::<CertificateUse>("GetInstalledCertificateIds", "CertificateUseEnumType");
        all::<GetInstalledCertificateStatus>(
            "GetInstalledCertificateIdsResponse",
            "GetInstalledCertificateStatusEnumType",
        );
        all::<LogType>("GetLog", "LogEnumType");
        all::<LogStatus>("GetLogResponse", "LogStatusEnumType");
        all::<CertificateUse>("InstallCertificate", "CertificateUseEnumType");
        all::<InstallCertificateStatus>("InstallCertificateResponse", "InstallCertificateStatusEnumType");
        all::<UploadLogStatus>("LogStatusNotification", "UploadLogStatusEnumType");
        all::<GenericStatus>("SignCertificateResponse", "GenericStatusEnumType");
        all::<FirmwareStatus>("SignedFirmwareStatusNotification", "FirmwareStatusEnumType");
        all::<UpdateFirmwareStatus>("SignedUpdateFirmwareResponse", "UpdateFirmwareStatusEnumType");
    }
}
