//! A test PKI generated with rcgen: a CA, a server certificate for `localhost`/127.0.0.1,
//! station client certificates, and an untrusted CA for negative tests.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate with its private key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    pub fn identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (vec![self.cert.clone()], self.key.clone_key())
    }
}

pub fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.distinguished_name.push(DnType::OrganizationName, "evcs tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("self-signed CA")
}

pub fn new_leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Leaf {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("sign leaf");
    Leaf {
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// The test PKI: one trusted CA with a server certificate, one untrusted CA.
pub struct Pki {
    pub ca: CertifiedIssuer<'static, KeyPair>,
    pub server: Leaf,
    pub rogue_ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = new_ca("evcs test CA");
        let server = new_leaf(
            &ca,
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let rogue_ca = new_ca("untrusted test CA");
        Pki { ca, server, rogue_ca }
    }

    /// A station client certificate (CN = `station`) from the test CA.
    pub fn client(&self, station: &str) -> Leaf {
        new_leaf(&self.ca, station, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A station client certificate from the untrusted CA.
    pub fn rogue_client(&self, station: &str) -> Leaf {
        new_leaf(&self.rogue_ca, station, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// Writes the server's PEM files into the config's data dir and enables TLS (with client
    /// certificates from the test CA when `client_ca`).
    pub fn configure(&self, config: &mut central_system::Config, client_ca: bool) {
        let dir = config.data_dir.clone();
        let cert = dir.join("server.pem");
        let key = dir.join("server-key.pem");
        let ca = dir.join("client-ca.pem");
        std::fs::write(&cert, format!("{}{}", self.server.cert_pem, self.ca.pem())).expect("write server cert");
        std::fs::write(&key, &self.server.key_pem).expect("write server key");
        std::fs::write(&ca, self.ca.pem()).expect("write client CA");
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.tls_client_ca = client_ca.then_some(ca);
    }
}
