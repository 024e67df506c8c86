//! Local authorisation: the list the central system sends (SendLocalList) and the cache of
//! tokens it accepted, consulted before asking and when offline.

use std::collections::HashMap;

/// The local authorisation list and the cache.
#[derive(Debug, Clone, Default)]
pub struct LocalAuth {
    /// Version of the list (0: none installed).
    pub list_version: i64,
    list: HashMap<String, String>,
    cache: HashMap<String, String>,
}

/// Why SendLocalList was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListRefusal {
    /// A differential update for a version not newer than the installed one.
    VersionMismatch,
}

impl LocalAuth {
    /// The status the list or cache knows for `token` (list first).
    pub fn lookup(&self, token: &str, use_cache: bool) -> Option<&str> {
        self.list
            .get(token)
            .or_else(|| if use_cache { self.cache.get(token) } else { None })
            .map(String::as_str)
    }

    /// Remembers the central system's verdict on a token.
    pub fn remember(&mut self, token: &str, status: &str) {
        self.cache.insert(token.to_string(), status.to_string());
    }

    /// What the list and the cache hold for `token`: (list status, cache status).
    pub fn entries(&self, token: &str) -> (Option<&str>, Option<&str>) {
        (
            self.list.get(token).map(String::as_str),
            self.cache.get(token).map(String::as_str),
        )
    }

    /// Drops `token` from the cache (CustomerInformation clear). The local list stays: it is
    /// the central system's, versioned, and only SendLocalList changes it.
    pub fn forget(&mut self, token: &str) -> bool {
        self.cache.remove(token).is_some()
    }

    /// Empties the cache (ClearCache).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Applies SendLocalList: entries are (token, Some(status)) to set and (token, None) to remove.
    pub fn update(
        &mut self,
        version: i64,
        full: bool,
        entries: Vec<(String, Option<String>)>,
    ) -> Result<(), ListRefusal> {
        if !full && version <= self.list_version {
            return Err(ListRefusal::VersionMismatch);
        }
        if full {
            self.list.clear();
        }
        for (token, status) in entries {
            match status {
                Some(s) => {
                    self.list.insert(token, s);
                }
                None => {
                    self.list.remove(&token);
                }
            }
        }
        self.list_version = version;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_then_cache_and_versions() {
        let mut auth = LocalAuth::default();
        auth.remember("CACHED", "Accepted");
        assert_eq!(auth.lookup("CACHED", true), Some("Accepted"));
        assert_eq!(auth.lookup("CACHED", false), None);
        auth.update(
            1,
            true,
            vec![
                ("A".into(), Some("Accepted".into())),
                ("B".into(), Some("Blocked".into())),
            ],
        )
        .unwrap();
        assert_eq!(auth.lookup("B", true), Some("Blocked"));
        assert_eq!(auth.update(1, false, vec![]), Err(ListRefusal::VersionMismatch));
        auth.update(2, false, vec![("B".into(), None)]).unwrap();
        assert_eq!(auth.lookup("B", true), None);
        assert_eq!(auth.list_version, 2);
        auth.clear_cache();
        assert_eq!(auth.lookup("CACHED", true), None);
        auth.update(3, true, vec![]).unwrap();
        assert_eq!(auth.lookup("A", true), None);
    }
}
