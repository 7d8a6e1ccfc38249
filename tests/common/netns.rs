//! A test's own network: a namespace joined to the host by a veth pair,
//! with an address on each end (`ip netns`, from Debian's iproute2; needs
//! root). Servers started in it (`Server::start_in_netns`) are reached
//! from the host over the pair, and see the host's address as the client's.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} (needs root): {status}");
}

/// A network namespace and the veth pair that joins it to the host.
pub struct TestNet {
    pub ns: String,
    host_if: String,
    /// The host's address on the pair.
    pub host_ip: String,
    /// The namespace's address on the pair.
    pub ns_ip: String,
}

impl TestNet {
    pub fn create() -> TestNet {
        // Names and a subnet of their own for each network of each test
        // process (interface names have at most 15 characters).
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let subnet = format!("10.{}.{}", 200 + n % 50, pid % 250);
        let net = TestNet {
            ns: format!("gmsf{pid}n{n}"),
            host_if: format!("gh{pid}n{n}"),
            host_ip: format!("{subnet}.1"),
            ns_ip: format!("{subnet}.2"),
        };
        let peer = format!("gp{pid}n{n}");
        ip(&["netns", "add", &net.ns]);
        ip(&[
            "link",
            "add",
            &net.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &net.ns]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.host_ip),
            "dev",
            &net.host_if,
        ]);
        ip(&["link", "set", &net.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &net.ns, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["addr", "add", &format!("{}/24", net.ns_ip), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        net
    }

    /// Cuts the link (a partition).
    pub fn cut(&self) {
        ip(&["link", "set", &self.host_if, "down"]);
    }

    pub fn heal(&self) {
        ip(&["link", "set", &self.host_if, "up"]);
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(std::process::Stdio::null())
            .status();
    }
}
