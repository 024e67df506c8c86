//! Secrets generated on first start in the embedded mode, kept in the data directory.

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::io::Write;
use std::path::Path;

/// A secret: `configured` if given (at least 16 characters), else the content of
/// `dir/file_name`, created with 32 random bytes (owner-only permissions) if missing.
pub fn stored_secret(configured: Option<&str>, dir: &Path, file_name: &str) -> anyhow::Result<String> {
    if let Some(secret) = configured {
        anyhow::ensure!(secret.len() >= 16, "the {file_name} must have at least 16 characters");
        return Ok(secret.to_string());
    }
    let path = dir.join(file_name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if !existing.is_empty() {
            return Ok(existing);
        }
    }
    crate::db::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a secret");
    Ok(secret)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::stored_secret(None, dir.path(), "s").unwrap();
        assert!(first.len() >= 40);
        assert_eq!(super::stored_secret(None, dir.path(), "s").unwrap(), first);
        assert_eq!(
            super::stored_secret(Some("configured-secret-123"), dir.path(), "s").unwrap(),
            "configured-secret-123"
        );
        assert!(super::stored_secret(Some("short"), dir.path(), "s").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn generated_secrets_and_their_directory_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        super::stored_secret(None, &dir, "jwt-secret").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("jwt-secret")), 0o600);
    }
}

/// A secret value from the configuration (a signing key, a URL with credentials): its `Debug`
/// and `Display` never show it, so a logged configuration leaks nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[cfg(test)]
mod secret_tests {
    #[test]
    fn secrets_do_not_print() {
        let s: super::Secret = "hunter2-hunter2".parse().unwrap_or_else(|e| match e {});
        assert_eq!(format!("{s:?} {s}"), "Secret(..) [redacted]");
        assert_eq!(s.expose(), "hunter2-hunter2");
    }
}
