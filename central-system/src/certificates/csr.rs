//! Checking a station's certificate signing request (2.0.1 A02.FR.*/A03.FR.*, 1.6 security
//! whitepaper A02/A03): it must be a PEM PKCS#10 request whose signature verifies with the key
//! it carries (proof that the station holds the private key), and whose subject names the
//! station: CN = the station id of the connection, O = the configured organization.
//!
//! Pure functions over the request text, so every refusal reason has a unit test.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use x509_parser::x509::AttributeTypeAndValue;

/// Why a CSR is refused; each becomes a stored security event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrRejection {
    /// Not PEM, not a PKCS#10 request, or trailing garbage.
    #[error("the CSR is not a well-formed PEM certificate request: {0}")]
    Malformed(String),
    /// The request's self-signature does not verify with its own public key.
    #[error("the CSR's signature does not verify")]
    BadSignature,
    /// The subject's common name is not the id the station connected with.
    #[error("the CSR's common name {found:?} is not the station id")]
    WrongCommonName {
        /// What the CSR names (empty when absent).
        found: String,
    },
    /// The subject's organization is not the configured one.
    #[error("the CSR's organization {found:?} is not {expected:?}")]
    WrongOrganization {
        /// What the CSR names (empty when absent).
        found: String,
        /// The organization the CSMS requires.
        expected: String,
    },
}

impl CsrRejection {
    /// The security event type stored for this refusal (stable, for filtering).
    pub fn event_type(&self) -> &'static str {
        match self {
            CsrRejection::Malformed(_) => "InvalidCsrFormat",
            CsrRejection::BadSignature => "InvalidCsrSignature",
            CsrRejection::WrongCommonName { .. } => "InvalidCsrCommonName",
            CsrRejection::WrongOrganization { .. } => "InvalidCsrOrganization",
        }
    }
}

/// A request that passed every check: what signing needs from it.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    /// DER SubjectPublicKeyInfo of the station's key.
    pub public_key_der: Vec<u8>,
    /// The subject's common name (= the station id).
    pub common_name: String,
    /// The subject's organization, if it named one.
    pub organization: Option<String>,
}

/// Checks `pem` as a CSR of `station_id`; `organization` is the O it must name (`None`: any).
pub fn check(pem: &str, station_id: &str, organization: Option<&str>) -> Result<CheckedCsr, CsrRejection> {
    let der = pem_body(pem)?;
    let (rest, request) = X509CertificationRequest::from_der(&der)
        .map_err(|e| CsrRejection::Malformed(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(CsrRejection::Malformed("trailing bytes after the request".into()));
    }
    request.verify_signature().map_err(|_| CsrRejection::BadSignature)?;
    let subject = &request.certification_request_info.subject;
    let common_name = text(subject.iter_common_name().next());
    if common_name.as_deref() != Some(station_id) {
        return Err(CsrRejection::WrongCommonName {
            found: common_name.unwrap_or_default(),
        });
    }
    let found_org = text(subject.iter_organization().next());
    if let Some(expected) = organization {
        if found_org.as_deref() != Some(expected) {
            return Err(CsrRejection::WrongOrganization {
                found: found_org.unwrap_or_default(),
                expected: expected.to_string(),
            });
        }
    }
    Ok(CheckedCsr {
        public_key_der: request.certification_request_info.subject_pki.raw.to_vec(),
        common_name: station_id.to_string(),
        organization: found_org,
    })
}

/// The DER inside the one `CERTIFICATE REQUEST` PEM block of `pem`.
fn pem_body(pem: &str) -> Result<Vec<u8>, CsrRejection> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
        .map_err(|e| CsrRejection::Malformed(format!("not PEM: {e}")))?;
    // OpenSSL's older tools write "NEW CERTIFICATE REQUEST"; both mean PKCS#10.
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(CsrRejection::Malformed(format!(
            "a PEM block labelled {:?}, not CERTIFICATE REQUEST",
            block.label
        )));
    }
    Ok(block.contents)
}

/// An attribute's value as text; one that is not a string counts as absent.
fn text(attr: Option<&AttributeTypeAndValue<'_>>) -> Option<String> {
    attr.and_then(|a| a.as_str().ok()).map(str::to_string)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    /// A CSR with the given subject, signed by a fresh key.
    pub(crate) fn csr(cn: Option<&str>, org: Option<&str>) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        if let Some(org) = org {
            params.distinguished_name.push(DnType::OrganizationName, org);
        }
        let key = KeyPair::generate().unwrap();
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn a_request_naming_the_station_and_organization_passes() {
        let checked = check(&csr(Some("CP-1"), Some("EVCS")), "CP-1", Some("EVCS")).unwrap();
        assert_eq!(checked.common_name, "CP-1");
        assert_eq!(checked.organization.as_deref(), Some("EVCS"));
        assert!(!checked.public_key_der.is_empty());
        // Without a required organization any O (or none) passes.
        assert!(check(&csr(Some("CP-1"), None), "CP-1", None).is_ok());
    }

    #[test]
    fn wrong_subjects_are_refused() {
        assert_eq!(
            check(&csr(Some("CP-2"), Some("EVCS")), "CP-1", Some("EVCS")).unwrap_err(),
            CsrRejection::WrongCommonName { found: "CP-2".into() }
        );
        assert_eq!(
            check(&csr(None, Some("EVCS")), "CP-1", Some("EVCS")).unwrap_err(),
            CsrRejection::WrongCommonName { found: String::new() }
        );
        let err = check(&csr(Some("CP-1"), Some("Other")), "CP-1", Some("EVCS")).unwrap_err();
        assert_eq!(err.event_type(), "InvalidCsrOrganization");
        let err = check(&csr(Some("CP-1"), None), "CP-1", Some("EVCS")).unwrap_err();
        assert_eq!(err.event_type(), "InvalidCsrOrganization");
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n",
        ] {
            assert_eq!(
                check(bad, "CP-1", None).unwrap_err().event_type(),
                "InvalidCsrFormat",
                "{bad:?}"
            );
        }
        // A certificate is not a request.
        let cert = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        let err = check(&cert.cert.pem(), "CP-1", None).unwrap_err();
        assert_eq!(err.event_type(), "InvalidCsrFormat");
    }

    #[test]
    fn a_tampered_request_fails_its_signature() {
        let pem = tampered_csr("CP-1", "EVCS");
        assert_eq!(
            check(&pem, "CP-1", Some("EVCS")).unwrap_err(),
            CsrRejection::BadSignature
        );
    }

    /// A CSR for `cn`/`org` whose signature belongs to a different subject: the CN's bytes are
    /// changed after signing (same length, so the DER stays well formed).
    pub(crate) fn tampered_csr(cn: &str, org: &str) -> String {
        use base64::Engine;
        let original = format!("{}X", &cn[..cn.len() - 1]);
        let pem = csr(Some(&original), Some(org));
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let mut der = block.contents;
        let at = der
            .windows(original.len())
            .position(|w| w == original.as_bytes())
            .unwrap();
        der[at..at + cn.len()].copy_from_slice(cn.as_bytes());
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n")
    }
}
