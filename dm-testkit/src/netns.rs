//! A network namespace of the test's own, joined to the host by a veth pair, for network-fault
//! tests: a server started inside it ([`crate::MariaDbOptions::in_namespace`]) is reached at the
//! namespace's address through one link that the test can cut, slow down or heal.
//!
//! ```text
//! host namespace                                  dmtest-<pid>-<n>
//!   test, syncer --- dmh<n> 10.213.a.b+1/30 ===== dmi<n> 10.213.a.b+2/30 --- mariadbd
//!                    (qdisc: the fault, egress)   (qdisc: the fault, egress)
//!
//! partition(): pfifo limit 0 on both ends: every packet dropped, no RST, no FIN, links stay up
//!              (what a dead switch or a firewall that drops looks like: half-open connections)
//! heal():      the default qdisc again on both ends; TCP retransmits and goes on
//! throttle():  tbf on both ends: a slow link whose queue adds up to `latency` of delay and
//!              drops what does not fit (tail drops, retransmissions)
//! delay() / loss(): netem on both ends, on kernels built with it (CONFIG_NET_SCH_NETEM)
//! drop:        delete the namespace and the veth (on panic too), free the subnet reservation
//! ```
//!
//! Invariants:
//! - every namespace and veth this module creates is deleted when its handle drops; a test
//!   process killed by SIGKILL leaves them behind, and the next [`NetworkNamespace::new`] that
//!   meets its reservation deletes them (the reservation names the dead PID);
//! - each namespace has a private /30 in 10.213.0.0/16, reserved with a file in the temp
//!   directory, so test processes running at once never share a subnet;
//! - only the namespace's own link is touched: the host's other interfaces, routes and qdiscs
//!   are not.
//!
//! Error model: without root, [`TestkitError::NotPermitted`]; without `ip`/`tc`,
//! [`TestkitError::MissingBinary`] (with [`crate::or_skip!`]: skipped outside CI, failed in CI);
//! a fault the kernel cannot make (no netem) is [`TestkitError::NotPermitted`] naming the
//! kernel option; any other failed command is [`TestkitError::Io`] with its stderr.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::TestkitError;
use crate::process::{process_alive, running_as_root};

/// Subnets: 10.213.0.0/16 cut into /30s.
const SUBNETS: u32 = 1 << 14;
/// Namespaces made by this process (for the probe's starting point).
static MADE: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a veth pair to the host; removed on drop.
#[derive(Debug)]
pub struct NetworkNamespace {
    /// `dmtest-<pid>-<n>`.
    name: String,
    /// The host side of the veth pair (`dmh<n>`).
    host_interface: String,
    /// The namespace side (`dmi<n>`).
    inside_interface: String,
    /// The host side's address.
    host_address: Ipv4Addr,
    /// The namespace side's address: where servers inside listen.
    address: Ipv4Addr,
    /// The file that reserves subnet `n` for this process; removed on drop.
    reservation: PathBuf,
}

/// Where a server inside a namespace runs and listens (what [`crate::MariaDbOptions`] keeps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceAddress {
    /// The namespace's name (`ip netns exec <name>`).
    pub name: String,
    /// The address inside it.
    pub address: Ipv4Addr,
}

/// The host pattern of a server's grant for the clients of `namespace` (they come from the
/// host side of its link, in 10.213.0.0/16).
pub fn client_host_pattern(namespace: &NamespaceAddress) -> String {
    let [a, b, ..] = namespace.address.octets();
    format!("{a}.{b}.%")
}

/// The fault a link carries now (what [`NetworkNamespace::fault`] reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkFault {
    /// Packets pass.
    None,
    /// Every packet is dropped.
    Partitioned,
    /// A tbf or netem qdisc shapes the link (its `tc` arguments).
    Shaped(String),
}

impl NetworkNamespace {
    /// Creates a namespace with loopback up and a veth pair in a private /30.
    pub fn new() -> Result<NetworkNamespace, TestkitError> {
        if !running_as_root() {
            return Err(TestkitError::NotPermitted {
                what: "create a network namespace".into(),
                hint: "run the network-fault tests as root (CAP_NET_ADMIN)".into(),
            });
        }
        for binary in ["ip", "tc"] {
            crate::process::find_binary(binary, "DM_TEST_NO_OVERRIDE").map_err(|_| {
                TestkitError::MissingBinary {
                    binary: binary.into(),
                    hint: "install iproute2 (apt-get install iproute2)".into(),
                }
            })?;
        }
        let (index, reservation) = reserve_subnet()?;
        let base = u32::from(Ipv4Addr::new(10, 213, 0, 0)) + index * 4;
        let namespace = NetworkNamespace {
            name: format!("dmtest-{}-{index}", std::process::id()),
            host_interface: format!("dmh{index}"),
            inside_interface: format!("dmi{index}"),
            host_address: Ipv4Addr::from(base + 1),
            address: Ipv4Addr::from(base + 2),
            reservation,
        };
        // From here on, dropping `namespace` removes whatever was made.
        run("ip", &["netns", "add", &namespace.name]).map_err(|error| match error {
            TestkitError::Io { source, .. }
                if source.to_string().contains("ermission denied")
                    || source.to_string().contains("not permitted") =>
            {
                TestkitError::NotPermitted {
                    what: "create a network namespace".into(),
                    hint: format!("{source}; run the network-fault tests as root"),
                }
            }
            other => other,
        })?;
        let name = namespace.name.clone();
        let host = namespace.host_interface.clone();
        let inside = namespace.inside_interface.clone();
        run(
            "ip",
            &[
                "link", "add", &host, "type", "veth", "peer", "name", &inside, "netns", &name,
            ],
        )?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", namespace.host_address),
                "dev",
                &host,
            ],
        )?;
        run("ip", &["link", "set", &host, "up"])?;
        run(
            "ip",
            &[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{}/30", namespace.address),
                "dev",
                &inside,
            ],
        )?;
        run("ip", &["-n", &name, "link", "set", &inside, "up"])?;
        run("ip", &["-n", &name, "link", "set", "lo", "up"])?;
        namespace.clear()?;
        Ok(namespace)
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address inside the namespace: where a server started in it listens.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The namespace's name and address, for a server started in it.
    pub fn binding(&self) -> NamespaceAddress {
        NamespaceAddress {
            name: self.name.clone(),
            address: self.address,
        }
    }

    /// The host side's address (what a server inside sees its clients come from).
    pub fn host_address(&self) -> Ipv4Addr {
        self.host_address
    }

    /// The host side's interface name.
    pub fn host_interface(&self) -> &str {
        &self.host_interface
    }

    /// A command that runs `program` inside the namespace (`ip netns exec <name> program`;
    /// `ip` execs the program, so the child's PID is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Cuts the link: every packet, both ways, is dropped from now on, silently (no RST, no
    /// ICMP, the interfaces stay up): open connections become half-open.
    pub fn partition(&self) -> Result<(), TestkitError> {
        self.set_qdisc(&["pfifo", "limit", "0"])
    }

    /// Undoes [`NetworkNamespace::partition`] (and any shaping): packets pass again.
    pub fn heal(&self) -> Result<(), TestkitError> {
        self.clear()
    }

    /// A slow link, both ways: `rate_kbit` kbit/s, and a queue that holds up to `latency` of
    /// traffic (the delay a full queue adds); what does not fit is dropped.
    pub fn throttle(&self, rate_kbit: u32, latency: Duration) -> Result<(), TestkitError> {
        // The burst must hold at least one full-size packet at this rate.
        let burst = (rate_kbit as u64 * 1000 / 8 / 100).max(4096);
        self.set_qdisc(&[
            "tbf",
            "rate",
            &format!("{rate_kbit}kbit"),
            "burst",
            &burst.to_string(),
            "latency",
            &format!("{}ms", latency.as_millis()),
        ])
    }

    /// Delays every packet by `delay`, each way (netem; needs a kernel with
    /// CONFIG_NET_SCH_NETEM, which [`NetworkNamespace::netem_available`] tells).
    pub fn delay(&self, delay: Duration) -> Result<(), TestkitError> {
        self.netem(&["delay", &format!("{}ms", delay.as_millis())])
    }

    /// Drops `percent` % of the packets at random, each way (netem, as for
    /// [`NetworkNamespace::delay`]).
    pub fn loss(&self, percent: f64) -> Result<(), TestkitError> {
        self.netem(&["loss", &format!("{percent}%")])
    }

    /// Removes any fault: the veth's default qdisc on both ends.
    pub fn clear(&self) -> Result<(), TestkitError> {
        for (namespace, interface) in self.ends() {
            let mut arguments = namespace_arguments(namespace);
            arguments.extend(["qdisc", "del", "dev", interface, "root"]);
            // Deleting the default qdisc fails ("handle of zero"): nothing to remove.
            let _ = run("tc", &arguments);
        }
        Ok(())
    }

    /// What the host side's qdisc does now (both ends always carry the same one).
    pub fn fault(&self) -> Result<LinkFault, TestkitError> {
        let shown = output("tc", &["qdisc", "show", "dev", &self.host_interface])?;
        Ok(if shown.contains("pfifo") && shown.contains("limit 0p") {
            LinkFault::Partitioned
        } else if shown.contains("tbf") || shown.contains("netem") {
            LinkFault::Shaped(shown.trim().to_owned())
        } else {
            LinkFault::None
        })
    }

    /// Packets the host side's qdisc dropped since it was set (`tc -s`): proof that a shaped
    /// link did drop.
    pub fn dropped_packets(&self) -> Result<u64, TestkitError> {
        let shown = output("tc", &["-s", "qdisc", "show", "dev", &self.host_interface])?;
        Ok(shown
            .split("dropped ")
            .skip(1)
            .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .filter_map(|number| number.parse::<u64>().ok())
            .sum())
    }

    /// Whether this kernel has netem ([`NetworkNamespace::delay`], [`NetworkNamespace::loss`]).
    pub fn netem_available(&self) -> bool {
        let available = run(
            "tc",
            &[
                "qdisc",
                "replace",
                "dev",
                &self.host_interface,
                "root",
                "netem",
                "delay",
                "0ms",
            ],
        )
        .is_ok();
        let _ = self.clear();
        available
    }

    fn netem(&self, arguments: &[&str]) -> Result<(), TestkitError> {
        if !self.netem_available() {
            return Err(TestkitError::NotPermitted {
                what: format!("shape the link with netem {}", arguments.join(" ")),
                hint:
                    "this kernel has no netem (CONFIG_NET_SCH_NETEM); use throttle() or partition()"
                        .into(),
            });
        }
        let mut all = vec!["netem"];
        all.extend_from_slice(arguments);
        self.set_qdisc(&all)
    }

    /// Replaces the root qdisc on both ends with `qdisc`.
    fn set_qdisc(&self, qdisc: &[&str]) -> Result<(), TestkitError> {
        for (namespace, interface) in self.ends() {
            let mut arguments = namespace_arguments(namespace);
            arguments.extend(["qdisc", "replace", "dev", interface, "root"]);
            arguments.extend_from_slice(qdisc);
            run("tc", &arguments)?;
        }
        Ok(())
    }

    /// `(namespace, interface)` of both ends; `None`: the host's namespace.
    fn ends(&self) -> [(Option<&str>, &str); 2] {
        [
            (None, self.host_interface.as_str()),
            (Some(self.name.as_str()), self.inside_interface.as_str()),
        ]
    }
}

impl Drop for NetworkNamespace {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both; the namespace goes when its last
        // process (a server a test forgot to stop) exits.
        let _ = run("ip", &["link", "del", &self.host_interface]);
        let _ = run("ip", &["netns", "del", &self.name]);
        let _ = std::fs::remove_file(&self.reservation);
    }
}

fn namespace_arguments(namespace: Option<&str>) -> Vec<&str> {
    match namespace {
        Some(name) => vec!["-n", name],
        None => Vec::new(),
    }
}

/// Reserves a free /30: the first index from a per-process starting point whose reservation
/// file can be created; a reservation of a dead process is taken over after its namespace and
/// veth are deleted.
fn reserve_subnet() -> Result<(u32, PathBuf), TestkitError> {
    let directory = std::env::temp_dir().join("dm-testkit-netns");
    std::fs::create_dir_all(&directory).map_err(|source| TestkitError::Io {
        action: format!("create {}", directory.display()),
        source,
    })?;
    let pid = std::process::id();
    let start = (pid.wrapping_mul(7919) + MADE.fetch_add(1, Ordering::Relaxed) * 13) % SUBNETS;
    for step in 0..SUBNETS {
        let index = (start + step) % SUBNETS;
        let path = directory.join(format!("{index}.pid"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                use std::io::Write as _;
                file.write_all(pid.to_string().as_bytes())
                    .map_err(|source| TestkitError::Io {
                        action: format!("write {}", path.display()),
                        source,
                    })?;
                // A stale interface of that index (its reservation was removed by hand) would
                // make the veth creation fail: remove it first.
                if interface_exists(&format!("dmh{index}")) {
                    let _ = run("ip", &["link", "del", &format!("dmh{index}")]);
                }
                return Ok((index, path));
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok());
                if let Some(owner) = owner.filter(|owner| *owner != pid && !process_alive(*owner)) {
                    // Left by a killed test process: delete what it made, then retry this index.
                    let _ = run("ip", &["link", "del", &format!("dmh{index}")]);
                    let _ = run("ip", &["netns", "del", &format!("dmtest-{owner}-{index}")]);
                    let _ = std::fs::remove_file(&path);
                }
            }
            Err(source) => {
                return Err(TestkitError::Io {
                    action: format!("create {}", path.display()),
                    source,
                });
            }
        }
    }
    Err(TestkitError::Io {
        action: "reserve a /30 for a network namespace".into(),
        source: std::io::Error::other("all 10.213.0.0/16 subnets are reserved"),
    })
}

fn interface_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Runs a command; its stderr becomes the error.
fn run(program: &str, arguments: &[&str]) -> Result<(), TestkitError> {
    output(program, arguments).map(|_| ())
}

/// Runs a command and returns its stdout; its stderr becomes the error.
fn output(program: &str, arguments: &[&str]) -> Result<String, TestkitError> {
    let action = format!("run `{program} {}`", arguments.join(" "));
    let result = Command::new(program)
        .args(arguments)
        .output()
        .map_err(|source| TestkitError::Io {
            action: action.clone(),
            source,
        })?;
    if result.status.success() {
        Ok(String::from_utf8_lossy(&result.stdout).into_owned())
    } else {
        Err(TestkitError::Io {
            action,
            source: std::io::Error::other(
                String::from_utf8_lossy(&result.stderr).trim().to_owned(),
            ),
        })
    }
}
