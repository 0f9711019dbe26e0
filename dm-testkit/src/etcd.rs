//! Isolated `etcd` servers on loopback: one node, or a cluster of several.
//!
//! Each member has its own temp data directory and free client and peer ports on 127.0.0.1.
//! Readiness is etcd's own `GET /health` (`{"health":"true"}` once the member sees a leader).
//! A member can be killed and started again (it rejoins with its data), for failover tests.
//!
//! For network-fault tests one member can run inside a [`crate::NetworkNamespace`]
//! ([`EtcdCluster::start_cluster_with_member_in`]):
//!
//! ```text
//! host namespace                                         the test's namespace
//!   member0, member1 on 10.213.a.b+1 (host side) ====== member2 on 10.213.a.b+2
//!   clients (the test)                               ^ partition() cuts member2 off from
//!                                                      its peers and from every client
//! ```
//!
//! The host members listen on the host side of the link, not 127.0.0.1, so that the member
//! inside can reach them; traffic between the host members stays on the host and no fault of
//! the link touches it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::TestkitError;
use crate::process::{ServerProcess, find_binary, free_port, log_tail, make_server_directory};

/// How long a member may take to report healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One etcd member's identity and ports.
#[derive(Debug)]
struct Member {
    name: String,
    /// The address the member listens on (peer and client).
    host: std::net::Ipv4Addr,
    /// The namespace it runs in, if any (started with `ip netns exec`).
    namespace: Option<crate::netns::NamespaceAddress>,
    client_port: u16,
    peer_port: u16,
    /// With TLS: the plain HTTP port of `/health` (the client port speaks TLS only).
    metrics_port: Option<u16>,
    process: ServerProcess,
}

impl Member {
    fn peer_url(&self) -> String {
        format!("http://{}:{}", self.host, self.peer_port)
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    fn client_url(&self) -> String {
        let scheme = if self.metrics_port.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}:{}", self.host, self.client_port)
    }
}

/// Timing of the Raft group; shorter than etcd's defaults so that tests elect leaders quickly.
#[derive(Clone, Copy, Debug)]
pub struct EtcdTiming {
    /// `--heartbeat-interval`, in milliseconds.
    pub heartbeat_milliseconds: u64,
    /// `--election-timeout`, in milliseconds.
    pub election_timeout_milliseconds: u64,
}

impl Default for EtcdTiming {
    fn default() -> Self {
        EtcdTiming {
            heartbeat_milliseconds: 100,
            election_timeout_milliseconds: 1000,
        }
    }
}

/// A running etcd cluster of one or more members. Dropping it kills every member and removes
/// their files.
#[derive(Debug)]
pub struct EtcdCluster {
    etcd: PathBuf,
    timing: EtcdTiming,
    members: Vec<Member>,
    /// `--cert-file`, `--key-file`, `--trusted-ca-file` (clients must present a certificate the
    /// CA signed), when started with [`EtcdCluster::start_with_tls`].
    tls: Option<[PathBuf; 3]>,
}

/// A single-node etcd.
pub type Etcd = EtcdCluster;

impl EtcdCluster {
    /// Starts one etcd node.
    pub async fn start() -> Result<EtcdCluster, TestkitError> {
        EtcdCluster::start_cluster(1, EtcdTiming::default()).await
    }

    /// Starts one etcd node whose clients must use TLS with a client certificate: the server
    /// certificate of `certificates` (`127.0.0.1`), clients checked against its CA. Endpoints
    /// stay `127.0.0.1:port` (a client with TLS options uses https).
    pub async fn start_with_tls(
        certificates: &crate::tls::TestCertificates,
    ) -> Result<EtcdCluster, TestkitError> {
        let (certificate, key) = certificates.server();
        EtcdCluster::start_members(
            1,
            EtcdTiming::default(),
            Some([certificate, key, certificates.ca()]),
            None,
        )
        .await
    }

    /// Starts `size` members that form one cluster; returns when every member is healthy.
    pub async fn start_cluster(
        size: usize,
        timing: EtcdTiming,
    ) -> Result<EtcdCluster, TestkitError> {
        EtcdCluster::start_members(size, timing, None, None).await
    }

    /// Starts `size` members of which member `inside` runs in `namespace`, on its address; the
    /// others listen on the host side of its link. [`crate::NetworkNamespace::partition`] then
    /// cuts that one member off from its peers and its clients. The namespace must outlive the
    /// cluster (declare it first).
    pub async fn start_cluster_with_member_in(
        size: usize,
        timing: EtcdTiming,
        inside: usize,
        namespace: &crate::NetworkNamespace,
    ) -> Result<EtcdCluster, TestkitError> {
        if inside >= size {
            return Err(TestkitError::Io {
                action: format!("place etcd member {inside} in a namespace"),
                source: std::io::Error::other(format!("the cluster has {size} members")),
            });
        }
        EtcdCluster::start_members(size, timing, None, Some((inside, namespace))).await
    }

    async fn start_members(
        size: usize,
        timing: EtcdTiming,
        tls: Option<[PathBuf; 3]>,
        placed: Option<(usize, &crate::NetworkNamespace)>,
    ) -> Result<EtcdCluster, TestkitError> {
        let etcd = find_binary("etcd", "DM_TEST_ETCD")?;
        let mut members = Vec::with_capacity(size);
        for index in 0..size {
            let name = format!("member{index}");
            let directory = make_server_directory(&format!("etcd-{name}"))?;
            let mut client_port = free_port()?;
            let mut peer_port = free_port()?;
            while peer_port == client_port
                || members.iter().any(|member: &Member| {
                    [member.client_port, member.peer_port]
                        .iter()
                        .any(|port| *port == client_port || *port == peer_port)
                })
            {
                client_port = free_port()?;
                peer_port = free_port()?;
            }
            let metrics_port = match &tls {
                None => None,
                Some(_) => loop {
                    let port = free_port()?;
                    if port != client_port && port != peer_port {
                        break Some(port);
                    }
                },
            };
            let (host, namespace) = match placed {
                None => (std::net::Ipv4Addr::LOCALHOST, None),
                Some((inside, namespace)) if inside == index => {
                    (namespace.address(), Some(namespace.binding()))
                }
                Some((_, namespace)) => (namespace.host_address(), None),
            };
            members.push(Member {
                process: ServerProcess::new(format!("etcd {name}"), directory),
                name,
                host,
                namespace,
                client_port,
                peer_port,
                metrics_port,
            });
        }
        let mut cluster = EtcdCluster {
            etcd,
            timing,
            members,
            tls,
        };
        for index in 0..size {
            cluster.spawn_member(index, "new")?;
        }
        for index in 0..size {
            cluster.wait_healthy(index).await?;
        }
        Ok(cluster)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|member| format!("{}={}", member.name, member.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn_member(&mut self, index: usize, state: &str) -> Result<(), TestkitError> {
        let initial_cluster = self.initial_cluster();
        let etcd = self.etcd.clone();
        let timing = self.timing;
        let tls = self.tls.clone();
        let member = self.member_mut(index)?;
        let mut command = match &member.namespace {
            // `ip netns exec` execs etcd: the PID the watchdog knows is the member's.
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &namespace.name]).arg(etcd);
                command
            }
            None => Command::new(etcd),
        };
        command.args([
            "--name".to_owned(),
            member.name.clone(),
            "--data-dir".to_owned(),
            member
                .process
                .directory()
                .join("data")
                .display()
                .to_string(),
            "--listen-client-urls".to_owned(),
            member.client_url(),
            "--advertise-client-urls".to_owned(),
            member.client_url(),
            "--listen-peer-urls".to_owned(),
            member.peer_url(),
            "--initial-advertise-peer-urls".to_owned(),
            member.peer_url(),
            "--initial-cluster".to_owned(),
            initial_cluster,
            "--initial-cluster-state".to_owned(),
            state.to_owned(),
            "--initial-cluster-token".to_owned(),
            "dm-testkit".to_owned(),
            "--heartbeat-interval".to_owned(),
            timing.heartbeat_milliseconds.to_string(),
            "--election-timeout".to_owned(),
            timing.election_timeout_milliseconds.to_string(),
        ]);
        if let (Some([certificate, key, ca]), Some(metrics_port)) = (&tls, member.metrics_port) {
            command.args([
                format!("--cert-file={}", certificate.display()),
                format!("--key-file={}", key.display()),
                format!("--trusted-ca-file={}", ca.display()),
                "--client-cert-auth".to_owned(),
                format!(
                    "--listen-metrics-urls=http://{}:{metrics_port}",
                    member.host
                ),
            ]);
        }
        member.process.spawn(command, "etcd.log")
    }

    fn member_mut(&mut self, index: usize) -> Result<&mut Member, TestkitError> {
        let count = self.members.len();
        self.members.get_mut(index).ok_or_else(|| TestkitError::Io {
            action: format!("find etcd member {index}"),
            source: std::io::Error::other(format!("the cluster has {count} members")),
        })
    }

    async fn wait_healthy(&mut self, index: usize) -> Result<(), TestkitError> {
        let started = Instant::now();
        loop {
            let member = self.member_mut(index)?;
            if member.process.has_exited() {
                return Err(TestkitError::ServerDidNotStart {
                    server: format!("etcd {}", member.name),
                    reason: "etcd exited during start-up".into(),
                    log_tail: log_tail(&member.process.directory().join("etcd.log"), 15),
                });
            }
            let port = member.metrics_port.unwrap_or(member.client_port);
            if health(member.host, port).await {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(TestkitError::ServerDidNotStart {
                    server: format!("etcd {}", member.name),
                    reason: format!("not healthy within {START_TIMEOUT:?}"),
                    log_tail: log_tail(&member.process.directory().join("etcd.log"), 15),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Client endpoints of the members that run, as `address:port` (`127.0.0.1:port` unless
    /// started with [`EtcdCluster::start_cluster_with_member_in`]).
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|member| member.process.pid().is_some())
            .map(Member::endpoint)
            .collect()
    }

    /// Client endpoints of every member, running or not.
    pub fn all_endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// The client endpoint of member `index`, running or not.
    pub fn endpoint(&self, index: usize) -> Option<String> {
        self.members.get(index).map(Member::endpoint)
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// PIDs of the running members.
    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|member| member.process.pid())
            .collect()
    }

    /// PIDs of the members' watchdogs.
    pub fn watchdog_pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|member| member.process.watchdog_pid())
            .collect()
    }

    /// The members' directories (removed on drop).
    pub fn directories(&self) -> Vec<PathBuf> {
        self.members
            .iter()
            .map(|member| member.process.directory().to_owned())
            .collect()
    }

    /// Whether member `index` answers `/health` with true.
    pub async fn is_healthy(&self, index: usize) -> bool {
        match self.members.get(index) {
            Some(member) => {
                health(
                    member.host,
                    member.metrics_port.unwrap_or(member.client_port),
                )
                .await
            }
            None => false,
        }
    }

    /// Kills member `index` (SIGKILL); its data stays for [`EtcdCluster::restart_member`].
    pub fn kill_member(&mut self, index: usize) -> Result<(), TestkitError> {
        self.member_mut(index)?.process.kill()
    }

    /// Starts a killed member again with its data; returns when it is healthy.
    pub async fn restart_member(&mut self, index: usize) -> Result<(), TestkitError> {
        if self.member_mut(index)?.process.pid().is_some() {
            self.kill_member(index)?;
        }
        self.spawn_member(index, "existing")?;
        self.wait_healthy(index).await
    }
}

/// `GET /health` on a client port; true when the member reports `"health":"true"`.
async fn health(host: std::net::Ipv4Addr, port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        stream
            .write_all(format!("GET /health HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        Some(String::from_utf8_lossy(&response).contains("\"health\":\"true\""))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
