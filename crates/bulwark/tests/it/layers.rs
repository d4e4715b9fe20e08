//! The layer rule of ARCHITECTURE.md, checked from `cargo metadata`: a crate depends only on crates
//! of lower layers, and `test-support` is only ever a dev-dependency.

use std::collections::HashMap;
use std::process::Command;

fn layer(name: &str) -> Option<u8> {
    Some(match name {
        "domain" => 0,
        // store-sql depends on no workspace crate; it is the SQL the two store adapters share.
        "auth" | "store" | "store-sql" | "exchange" | "vault" | "webhook" => 1,
        "store-sqlite" | "store-postgres" | "mail" | "exchange-binance" | "exchange-sim" => 2,
        "engine" => 3,
        "server" => 4,
        "bulwark" => 5,
        "test-support" => 9,
        _ => return None,
    })
}

#[test]
fn crates_depend_only_downwards() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: HashMap<String, u8> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .map(|name| {
            let l =
                layer(&name).unwrap_or_else(|| panic!("crate {name} has no layer in this test and ARCHITECTURE.md"));
            (name, l)
        })
        .collect();
    assert!(members.len() >= 9, "{members:?}");
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let Some(&dep_layer) = members.get(dep_name) else { continue };
            let is_dev = dep["kind"].as_str() == Some("dev");
            if dep_name == "test-support" {
                assert!(is_dev || name == "test-support", "{name} uses test-support outside dev-dependencies");
                continue;
            }
            if is_dev || name == "test-support" {
                continue;
            }
            assert!(
                dep_layer < members[name],
                "{name} (layer {}) depends on {dep_name} (layer {dep_layer})",
                members[name]
            );
        }
    }
}
