//! The station's own certificate (OCPP 2.0.1 A02/A03, the 1.6 security whitepaper's A02/A03):
//! a fresh key pair and a PKCS#10 request whose subject follows A02 (O = the configured
//! organization, CN = the station id), and the checks a returned chain must pass before the
//! station installs it: every block a certificate, the first one carrying *this* request's
//! public key (proof it was issued for the key the station holds), naming the station, valid
//! now, and each certificate signed by the next.
//!
//! Pure functions over PEM text and instants, so each refusal has a unit test.

use chrono::{DateTime, Utc};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

/// A certificate request and the private key that signed it (kept until the chain arrives).
#[derive(Debug, Clone)]
pub struct Request {
    /// The PEM `CERTIFICATE REQUEST` sent in SignCertificate.
    pub csr_pem: String,
    /// The PKCS#8 PEM private key, installed with the certificate.
    pub key_pem: String,
}

/// Why a CertificateSigned chain is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainRejection {
    /// Not PEM certificates, or none at all.
    #[error("the chain is not PEM certificates: {0}")]
    Malformed(String),
    /// No certificate request is waiting for an answer.
    #[error("no certificate request is pending")]
    NotRequested,
    /// The first certificate carries another public key than the pending request's.
    #[error("the certificate does not match the station's key")]
    KeyMismatch,
    /// The first certificate's common name is not the station id.
    #[error("the certificate's common name {0:?} is not the station id")]
    WrongCommonName(String),
    /// Outside its validity period.
    #[error("the certificate is not valid now")]
    NotValidNow,
    /// A certificate is not signed by the next one in the chain.
    #[error("certificate {0} of the chain is not signed by the next one")]
    BrokenChain(usize),
}

/// A new key pair and a request for `station_id` in `organization`.
pub fn request(station_id: &str, organization: &str) -> anyhow::Result<Request> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, station_id);
    if !organization.is_empty() {
        subject.push(DnType::OrganizationName, organization);
    }
    params.distinguished_name = subject;
    // ECDSA P-256: one of the two key types OCPP allows (A00.FR.3xx), and quick to generate.
    let key = KeyPair::generate()?;
    let csr_pem = params.serialize_request(&key)?.pem()?;
    Ok(Request {
        csr_pem,
        key_pem: key.serialize_pem(),
    })
}

/// Checks `chain_pem` (station certificate first) against the pending request's key; returns
/// the validated chain as PEM and its first certificate's end of validity.
pub fn check_chain(
    chain_pem: &str,
    key_pem: &str,
    station_id: &str,
    now: DateTime<Utc>,
) -> Result<(String, DateTime<Utc>), ChainRejection> {
    let blocks = pem_certificates(chain_pem)?;
    let certs: Vec<X509Certificate<'_>> = blocks
        .iter()
        .map(|b| {
            b.parse_x509()
                .map_err(|e| ChainRejection::Malformed(format!("not an X.509 certificate: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let Some(leaf) = certs.first() else {
        return Err(ChainRejection::Malformed("no certificate".into()));
    };
    let key = KeyPair::from_pem(key_pem).map_err(|_| ChainRejection::NotRequested)?;
    if leaf.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(ChainRejection::KeyMismatch);
    }
    let cn = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default();
    if cn != station_id {
        return Err(ChainRejection::WrongCommonName(cn.to_string()));
    }
    let validity = leaf.validity();
    let t = now.timestamp();
    if t < validity.not_before.timestamp() || t > validity.not_after.timestamp() {
        return Err(ChainRejection::NotValidNow);
    }
    for (i, pair) in certs.windows(2).enumerate() {
        pair[0]
            .verify_signature(Some(pair[1].public_key()))
            .map_err(|_| ChainRejection::BrokenChain(i + 1))?;
    }
    let not_after = DateTime::from_timestamp(validity.not_after.timestamp(), 0).unwrap_or(now);
    let pem: String = blocks.iter().map(to_pem).collect();
    Ok((pem, not_after))
}

/// The end of validity of the first certificate in `pem` (an installed chain).
pub fn not_after(pem: &str) -> Option<DateTime<Utc>> {
    let blocks = pem_certificates(pem).ok()?;
    let cert = blocks.first()?.parse_x509().ok()?;
    DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
}

/// Whether a certificate ending at `not_after` is due for renewal `renew_days` ahead of `now`.
pub fn renewal_due(not_after: DateTime<Utc>, now: DateTime<Utc>, renew_days: u32) -> bool {
    not_after - chrono::Duration::days(i64::from(renew_days)) <= now
}

fn pem_certificates(pem: &str) -> Result<Vec<Pem>, ChainRejection> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| ChainRejection::Malformed(e.to_string()))?;
        if block.label != "CERTIFICATE" {
            return Err(ChainRejection::Malformed(format!("a {:?} block", block.label)));
        }
        out.push(block);
    }
    if out.is_empty() {
        return Err(ChainRejection::Malformed("no certificate".into()));
    }
    Ok(out)
}

fn to_pem(block: &Pem) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(&block.contents);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateSigningRequestParams, IsCa, Issuer};
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::prelude::FromDer;

    struct Ca {
        cert_pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn new_ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Signs `csr_pem` as a CA would, valid for `days` from now.
    fn sign(ca: &Ca, csr_pem: &str, days: i64) -> String {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(Utc::now().timestamp()).unwrap();
        csr.params.not_before = now - time::Duration::minutes(5);
        csr.params.not_after = now + time::Duration::days(days);
        format!("{}{}", csr.signed_by(&ca.issuer).unwrap().pem(), ca.cert_pem)
    }

    #[test]
    fn the_request_names_the_station_and_organization_and_verifies() {
        let r = request("CP-1", "EVCS").unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(r.csr_pem.as_bytes()).unwrap();
        assert_eq!(pem.label, "CERTIFICATE REQUEST");
        let (_, csr) = X509CertificationRequest::from_der(&pem.contents).unwrap();
        csr.verify_signature().unwrap();
        let subject = &csr.certification_request_info.subject;
        assert_eq!(subject.iter_common_name().next().unwrap().as_str().unwrap(), "CP-1");
        assert_eq!(subject.iter_organization().next().unwrap().as_str().unwrap(), "EVCS");
        assert!(r.key_pem.contains("PRIVATE KEY"));
        assert_ne!(
            r.key_pem,
            request("CP-1", "EVCS").unwrap().key_pem,
            "a fresh key each time"
        );
    }

    #[test]
    fn a_chain_for_the_pending_key_is_accepted() {
        let ca = new_ca("station CA");
        let r = request("CP-1", "EVCS").unwrap();
        let chain = sign(&ca, &r.csr_pem, 30);
        let (pem, not_after) = check_chain(&chain, &r.key_pem, "CP-1", Utc::now()).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!((not_after - Utc::now()).num_days() >= 29);
        assert_eq!(super::not_after(&pem), Some(not_after));
    }

    #[test]
    fn chains_that_do_not_fit_are_refused_with_the_reason() {
        let ca = new_ca("station CA");
        let other_ca = new_ca("another CA");
        let r = request("CP-1", "EVCS").unwrap();
        let now = Utc::now();
        // Issued for another key: the classic mismatch.
        let other = request("CP-1", "EVCS").unwrap();
        assert_eq!(
            check_chain(&sign(&ca, &other.csr_pem, 30), &r.key_pem, "CP-1", now),
            Err(ChainRejection::KeyMismatch)
        );
        // Another station's name on our key is impossible to request, but a CA could issue it.
        let stranger = {
            let key = KeyPair::from_pem(&r.key_pem).unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, "CP-2");
            params.serialize_request(&key).unwrap().pem().unwrap()
        };
        assert_eq!(
            check_chain(&sign(&ca, &stranger, 30), &r.key_pem, "CP-1", now),
            Err(ChainRejection::WrongCommonName("CP-2".into()))
        );
        // Expired (checked a year later).
        let chain = sign(&ca, &r.csr_pem, 30);
        assert_eq!(
            check_chain(&chain, &r.key_pem, "CP-1", now + chrono::Duration::days(365)),
            Err(ChainRejection::NotValidNow)
        );
        // The leaf followed by a CA that did not sign it.
        let leaf_only = chain.split_inclusive("-----END CERTIFICATE-----\n").next().unwrap();
        let forged = format!("{leaf_only}{}", other_ca.cert_pem);
        assert_eq!(
            check_chain(&forged, &r.key_pem, "CP-1", now),
            Err(ChainRejection::BrokenChain(1))
        );
        for garbage in ["", "not PEM", &r.csr_pem] {
            assert!(
                matches!(
                    check_chain(garbage, &r.key_pem, "CP-1", now),
                    Err(ChainRejection::Malformed(_))
                ),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn renewal_is_due_inside_the_window() {
        let now = Utc::now();
        assert!(!renewal_due(now + chrono::Duration::days(40), now, 30));
        assert!(renewal_due(now + chrono::Duration::days(29), now, 30));
        assert!(renewal_due(now - chrono::Duration::days(1), now, 0));
    }
}
