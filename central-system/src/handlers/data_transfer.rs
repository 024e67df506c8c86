//! DataTransfer: vendor-specific extensions, answered `UnknownVendorId` unless a handler for the
//! vendor is registered.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// A vendor extension.
pub trait DataTransferHandler: Send + Sync {
    /// Answers a DataTransfer request payload with a response payload.
    fn handle(&self, station_id: &str, request: &Value) -> Value;
}

/// Registered vendor handlers, by vendor id.
#[derive(Default, Clone)]
pub struct DataTransferHandlers {
    handlers: HashMap<String, Arc<dyn DataTransferHandler>>,
}

impl std::fmt::Debug for DataTransferHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers.keys()).finish()
    }
}

impl DataTransferHandlers {
    /// Registers a handler for `vendor_id`.
    pub fn register(&mut self, vendor_id: &str, handler: Arc<dyn DataTransferHandler>) {
        self.handlers.insert(vendor_id.to_string(), handler);
    }

    /// Answers a request.
    pub fn handle(&self, station_id: &str, vendor_id: &str, request: &Value) -> Value {
        match self.handlers.get(vendor_id) {
            Some(h) => h.handle(station_id, request),
            None => json!({ "status": "UnknownVendorId" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl DataTransferHandler for Echo {
        fn handle(&self, _: &str, request: &Value) -> Value {
            json!({ "status": "Accepted", "data": request["data"] })
        }
    }

    #[test]
    fn unknown_vendor_unless_registered() {
        let mut h = DataTransferHandlers::default();
        let req = json!({"vendorId": "acme", "data": "x"});
        assert_eq!(h.handle("CP", "acme", &req)["status"], "UnknownVendorId");
        h.register("acme", Arc::new(Echo));
        assert_eq!(h.handle("CP", "acme", &req), json!({"status": "Accepted", "data": "x"}));
    }
}
