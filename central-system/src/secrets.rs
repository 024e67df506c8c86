//! Secrets generated on first start in the embedded mode, kept in the data directory.

use crate::config::Config;
use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::io::Write;

/// The JWT secret: from the configuration, else from `DATA_DIR/jwt-secret`, created if missing.
pub fn jwt_secret(config: &Config) -> anyhow::Result<String> {
    if let Some(secret) = &config.jwt_secret {
        anyhow::ensure!(secret.len() >= 16, "the JWT secret must have at least 16 characters");
        return Ok(secret.clone());
    }
    let path = config.data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if !existing.is_empty() {
            return Ok(existing);
        }
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
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
    tracing::info!(path = %path.display(), "generated a JWT secret");
    Ok(secret)
}
