//! The station CA: the key and certificate that sign station client certificates.
//!
//! Configured with `--station-ca-cert`/`--station-ca-key` (PEM), or, in the embedded default,
//! generated on first start under the data dir (`station-ca.pem`, `station-ca-key.pem`, owner
//! only), like the JWT secret. The TLS acceptor trusts this CA for client certificates, so what
//! it signs is usable for security profile 3 against this same central system.

use super::csr::CheckedCsr;
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, SerialNumber, SubjectPublicKeyInfo,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::io::Write;
use std::path::Path;

/// File names of the embedded default CA in the data dir.
const EMBEDDED_CERT: &str = "station-ca.pem";
const EMBEDDED_KEY: &str = "station-ca-key.pem";
/// Organization of the embedded default CA, and so the default O of station CSRs.
const EMBEDDED_ORGANIZATION: &str = "EVCS";

/// The CA and what signing needs from it.
pub struct StationCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    organization: Option<String>,
}

impl std::fmt::Debug for StationCa {
    // The key never appears in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationCa")
            .field("organization", &self.organization)
            .finish_non_exhaustive()
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// Serial number, upper-case hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// The station's certificate, PEM.
    pub cert_pem: String,
    /// The station's certificate followed by the CA's (what CertificateSigned carries).
    pub chain_pem: String,
}

impl StationCa {
    /// The configured CA, or the embedded default under `data_dir` (created when missing).
    pub fn load_or_create(cert: Option<&Path>, key: Option<&Path>, data_dir: &Path) -> anyhow::Result<StationCa> {
        match (cert, key) {
            (Some(cert), Some(key)) => {
                let cert_pem = std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
                let key_pem = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
                StationCa::from_pem(&cert_pem, &key_pem)
                    .with_context(|| format!("loading the station CA {}", cert.display()))
            }
            (None, None) => StationCa::embedded(data_dir),
            _ => anyhow::bail!("--station-ca-cert and --station-ca-key go together"),
        }
    }

    /// A CA from its PEM certificate and PKCS#8 key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<StationCa> {
        let key = KeyPair::from_pem(key_pem).context("parsing the CA key")?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).context("parsing the CA certificate")?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert_der.as_ref()).context("parsing the CA certificate")?;
        let organization = parsed
            .subject()
            .iter_organization()
            .next()
            .and_then(|o| o.as_str().ok())
            .map(str::to_string);
        // rcgen does not check the pair: a mismatched key would sign certificates nobody can
        // verify, so refuse it at start instead.
        anyhow::ensure!(
            parsed.public_key().subject_public_key.data.as_ref() == key.der_bytes(),
            "the station CA key does not belong to the station CA certificate"
        );
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).context("using the CA certificate as issuer")?;
        Ok(StationCa {
            issuer,
            cert_pem: pem_of(&cert_der),
            cert_der,
            organization,
        })
    }

    /// The embedded default: read from the data dir, or generated there on first start.
    fn embedded(data_dir: &Path) -> anyhow::Result<StationCa> {
        let cert_path = data_dir.join(EMBEDDED_CERT);
        let key_path = data_dir.join(EMBEDDED_KEY);
        if key_path.exists() && cert_path.exists() {
            return StationCa::load_or_create(Some(&cert_path), Some(&key_path), data_dir);
        }
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, "EVCS station CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, EMBEDDED_ORGANIZATION);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = Utc::now();
        params.not_before = to_time(now - Duration::hours(1))?;
        params.not_after = to_time(now + Duration::days(20 * 365))?;
        let key = KeyPair::generate().context("generating the station CA key")?;
        let cert = params.self_signed(&key).context("self-signing the station CA")?;
        service_kit::db::create_private_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        // Key first: a crash between the two writes leaves no certificate without its key.
        write_private(&key_path, &key.serialize_pem())?;
        write_private(&cert_path, &cert.pem())?;
        tracing::info!(path = %cert_path.display(), "generated the station CA");
        StationCa::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// The CA certificate, DER (a root for the TLS client verifier).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's organization (O), the default for station CSRs.
    pub fn organization(&self) -> Option<&str> {
        self.organization.as_deref()
    }

    /// Signs a checked CSR: a client-authentication certificate for its subject, valid from
    /// `now` (less a minute of clock skew) for `validity`.
    pub fn sign(&self, csr: &CheckedCsr, validity: Duration, now: DateTime<Utc>) -> anyhow::Result<IssuedCertificate> {
        let public_key = SubjectPublicKeyInfo::from_der(&csr.public_key_der).context("reading the CSR's public key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, csr.common_name.as_str());
        if let Some(org) = &csr.organization {
            params.distinguished_name.push(DnType::OrganizationName, org.as_str());
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyAgreement];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let serial = random_serial();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let not_before = now - Duration::minutes(1);
        let not_after = now + validity;
        params.not_before = to_time(not_before)?;
        params.not_after = to_time(not_after)?;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .context("signing the station certificate")?;
        let cert_pem = cert.pem();
        Ok(IssuedCertificate {
            serial: serial.iter().map(|b| format!("{b:02X}")).collect(),
            not_before,
            not_after,
            chain_pem: format!("{cert_pem}{}", self.cert_pem),
            cert_pem,
        })
    }
}

/// 16 random bytes with the top bit clear: a positive serial (RFC 5280 allows at most 20 octets).
fn random_serial() -> [u8; 16] {
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    // A leading zero octet would be dropped by DER; keep the length fixed.
    serial[0] |= 0x01;
    serial
}

fn to_time(t: DateTime<Utc>) -> anyhow::Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).context("certificate time out of range")
}

fn pem_of(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Writes a new owner-only file (the CA key must not be readable by others).
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::certificates::csr::{check, tests::csr};

    #[test]
    fn embedded_ca_is_generated_once_owner_only_and_signs_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let ca = StationCa::load_or_create(None, None, &data).unwrap();
        assert_eq!(ca.organization(), Some("EVCS"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [EMBEDDED_CERT, EMBEDDED_KEY] {
                let mode = std::fs::metadata(data.join(f)).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{f}");
            }
        }
        let again = StationCa::load_or_create(None, None, &data).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem(), "the second start reuses the CA");

        let checked = check(&csr(Some("CP-9"), Some("EVCS")), "CP-9", ca.organization()).unwrap();
        let now = Utc::now();
        let issued = ca.sign(&checked, Duration::days(365), now).unwrap();
        assert_eq!(issued.serial.len(), 32);
        assert!(issued.chain_pem.starts_with(&issued.cert_pem) && issued.chain_pem.ends_with(ca.cert_pem()));
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        assert_eq!(
            cert.subject().iter_common_name().next().unwrap().as_str().unwrap(),
            "CP-9"
        );
        assert_eq!(
            cert.issuer().iter_organization().next().unwrap().as_str().unwrap(),
            "EVCS"
        );
        assert_eq!(
            cert.validity().not_after.timestamp(),
            (now + Duration::days(365)).timestamp()
        );
        assert_eq!(
            cert.raw_serial_as_string().replace(':', "").to_uppercase(),
            issued.serial
        );
        // The CA's signature verifies.
        let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.cert_der().as_ref()).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    }

    #[test]
    fn a_configured_ca_is_loaded_with_its_organization() {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "Operator station CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "ACME Charging");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (dir.path().join("ca.pem"), dir.path().join("ca-key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let ca = StationCa::load_or_create(Some(&cert_path), Some(&key_path), dir.path()).unwrap();
        assert_eq!(ca.organization(), Some("ACME Charging"));
        assert!(
            !dir.path().join(EMBEDDED_KEY).exists(),
            "no embedded CA when one is configured"
        );
        let checked = check(&csr(Some("CP-1"), Some("ACME Charging")), "CP-1", ca.organization()).unwrap();
        let issued = ca.sign(&checked, Duration::days(10), Utc::now()).unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.cert_der().as_ref()).unwrap();
        leaf.verify_signature(Some(ca_cert.public_key())).unwrap();
        // A key that does not belong to the certificate is refused at start.
        std::fs::write(&key_path, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        assert!(StationCa::load_or_create(Some(&cert_path), Some(&key_path), dir.path()).is_err());
    }

    #[test]
    fn half_a_configuration_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pem");
        assert!(StationCa::load_or_create(Some(&p), None, dir.path()).is_err());
    }
}
