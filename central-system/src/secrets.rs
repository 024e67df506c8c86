//! Secrets generated on first start in the embedded mode, kept in the data directory.

use crate::config::Config;

/// The JWT secret: from the configuration, else from `DATA_DIR/jwt-secret`, created if missing.
pub fn jwt_secret(config: &Config) -> anyhow::Result<String> {
    service_kit::secrets::stored_secret(config.jwt_secret.as_deref(), &config.data_dir, "jwt-secret")
}
