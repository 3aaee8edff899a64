//! Readiness: a small registry of named checks that the parts of Souk keep up to date and
//! `GET /readyz` reports. A part that has not reported yet counts as not ready.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<RwLock<BTreeMap<String, Check>>>,
}

impl Health {
    /// Declares a check that must pass before Souk is ready; it starts failing.
    pub fn expect(&self, name: &str, detail: &str) {
        self.set(name, false, detail);
    }

    pub fn set(&self, name: &str, ok: bool, detail: impl Into<String>) {
        let check = Check {
            ok,
            detail: detail.into(),
        };
        self.checks.write().unwrap().insert(name.to_string(), check);
    }

    /// Whether every check passes, and all of them.
    pub fn report(&self) -> (bool, BTreeMap<String, Check>) {
        let checks = self.checks.read().unwrap().clone();
        (!checks.is_empty() && checks.values().all(|c| c.ok), checks)
    }
}
