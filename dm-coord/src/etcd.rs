//! `EtcdCoordStore`: the coordination store on an etcd cluster (feature `etcd`).
//!
//! ```text
//! CoordStore calls --etcd-client (gRPC, balanced over the endpoints)--> etcd members
//! Watcher <--bounded-- feeder task <--watch stream, re-created from the next revision after a break
//! ```
//!
//! Errors: an unreachable cluster (connection refused, no leader, timeouts) is
//! [`CoordError::Unavailable`], transient: [`connect_with_backoff`] and [`with_backoff`] retry it
//! with exponential backoff (dm-core's `retry`, which logs each retry). A malformed endpoint or rejected credentials is
//! [`CoordError::Refused`], naming the endpoint: retrying cannot help.
//!
//! TLS: [`EtcdOptions::tls`] (a [`dm_core::TlsConfig`], the `security` keys DM's master and
//! worker read) makes every endpoint `https://`, trusts only its CA, checks the member's name
//! and presents the client certificate. A TLS failure at connect (a file that cannot be read, a
//! certificate the CA did not sign, `verify-ca` or `cert-allowed-cn`, which tonic cannot
//! check) is [`CoordError::Refused`] naming the CA, not retried as an unreachable cluster; an
//! `http://` endpoint with TLS set is refused too.
//!
//! A watch survives a broken stream (a member restarting, a network blip): its feeder re-creates
//! the etcd watch from the revision after the last event it delivered, so events arrive in
//! order, none missed, none repeated. If that revision was compacted meanwhile the watch ends
//! with [`CoordError::Compacted`].

use std::future::Future;
use std::time::Duration;

use dm_core::{Backoff, ClassifiedError, ErrorClass, Retry};
use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn as EtcdTxn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;
use tonic::Code;

use crate::error::CoordError;
use crate::store::{
    Condition, CoordStore, EventKind, KeyValue, LeaseId, Operation, OperationResult, Revision, Txn,
    TxnResult, WatchEvent, Watcher,
};

/// How to reach an etcd cluster. Its `Debug` shows the password as `"***"`.
#[derive(Clone)]
pub struct EtcdOptions {
    /// `host:port` or `http://host:port` of one or more members.
    pub endpoints: Vec<String>,
    /// User name and password, when the cluster has authentication enabled.
    pub user: Option<(String, String)>,
    /// How long to wait for a connection to a member.
    pub connect_timeout: Duration,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// TLS to the members; `None`: plain gRPC.
    pub tls: Option<dm_core::TlsConfig>,
    /// HTTP/2 pings to each member while requests or streams are open on its connection, this
    /// long after the last frame from it; a member that does not answer one within
    /// `keepalive_timeout` is taken out of the client's balancing until it reconnects. Without
    /// them a member cut off by the network (no RST, no FIN) keeps receiving requests that each
    /// wait the whole `request_timeout`. At least [`EtcdOptions::MIN_KEEPALIVE`]: etcd closes
    /// the connection of a client that pings more often (`--grpc-keepalive-min-time`,
    /// `too_many_pings`). Idle connections are not pinged (etcd forbids that too).
    pub keepalive: Duration,
    /// How long a ping may wait for its answer.
    pub keepalive_timeout: Duration,
}

impl std::fmt::Debug for EtcdOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let EtcdOptions {
            endpoints,
            user,
            connect_timeout,
            request_timeout,
            tls,
            keepalive,
            keepalive_timeout,
        } = self;
        let user = user
            .as_ref()
            .map(|(name, password)| (name, dm_core::Redacted(password)));
        formatter
            .debug_struct("EtcdOptions")
            .field("endpoints", endpoints)
            .field("user", &user)
            .field("connect_timeout", connect_timeout)
            .field("request_timeout", request_timeout)
            .field("tls", tls)
            .field("keepalive", keepalive)
            .field("keepalive_timeout", keepalive_timeout)
            .finish()
    }
}

/// The backoff of [`with_backoff`] and of a watch re-created after a break: 50 ms doubling up
/// to 2 s.
const BACKOFF: Backoff = Backoff::doubling(Duration::from_millis(50), Duration::from_secs(2));

impl EtcdOptions {
    /// The shortest keepalive etcd accepts by default (`--grpc-keepalive-min-time`).
    pub const MIN_KEEPALIVE: Duration = Duration::from_secs(5);

    /// Options for these endpoints, no authentication, 2 s connect and 5 s request timeouts,
    /// a keepalive ping after 10 s of silence answered within 3 s.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            user: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            tls: None,
            keepalive: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(3),
        }
    }
}

/// etcd-client's (tonic's) TLS options for `tls`, or why it cannot be honoured.
fn tls_options(tls: &dm_core::TlsConfig) -> Result<etcd_client::TlsOptions, String> {
    use dm_core::{PemSource, TlsVerification};
    if !tls.allowed_common_names.is_empty() {
        return Err(
            "cert-allowed-cn is not supported by the etcd client (it cannot check a \
                    certificate's common name); remove it"
                .into(),
        );
    }
    if tls.verification != TlsVerification::Identity {
        return Err(
            "ssl-mode verify-ca is not supported by the etcd client: give the members \
                    certificates that name the hosts in the endpoints"
                .into(),
        );
    }
    let read = |source: &PemSource| match source {
        PemSource::File(path) => {
            std::fs::read(path).map_err(|error| format!("cannot read {source}: {error}"))
        }
        PemSource::Inline { pem, .. } => Ok(pem.clone()),
    };
    let mut options = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca)?));
    if let Some(identity) = &tls.client_identity {
        options = options.identity(etcd_client::Identity::from_pem(
            read(&identity.certificate)?,
            read(&identity.key)?,
        ));
    }
    Ok(options)
}

/// The messages of an error and of its sources, for a TLS failure buried in a transport error.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A coordination store on etcd.
#[derive(Clone)]
pub struct EtcdCoordStore {
    client: Client,
    /// The endpoints, for error messages.
    endpoints: String,
}

impl std::fmt::Debug for EtcdCoordStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EtcdCoordStore")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

/// Classifies an etcd-client error.
fn classify(endpoints: &str, error: etcd_client::Error) -> CoordError {
    use etcd_client::Error;
    let unavailable = |reason: String| CoordError::Unavailable {
        endpoint: endpoints.to_owned(),
        reason,
    };
    let refused = |reason: String| CoordError::Refused {
        endpoint: endpoints.to_owned(),
        reason,
    };
    match error {
        Error::GRpcStatus(status) => {
            let message = status.message().to_owned();
            match status.code() {
                Code::Unauthenticated | Code::PermissionDenied => refused(message),
                Code::InvalidArgument if message.contains("authentication") => refused(message),
                Code::InvalidArgument
                | Code::FailedPrecondition
                | Code::OutOfRange
                | Code::NotFound
                | Code::AlreadyExists
                | Code::Unimplemented => CoordError::InvalidRequest { reason: message },
                _ => unavailable(format!("{:?}: {message}", status.code())),
            }
        }
        Error::InvalidUri(error) => refused(format!("invalid endpoint: {error}")),
        Error::InvalidArgs(reason) | Error::EndpointError(reason) => refused(reason),
        other => unavailable(other.to_string()),
    }
}

/// Whether etcd says the lease is gone: as a gRPC status from the leader, or (through a
/// follower) as a keep-alive stream error.
fn is_lease_not_found(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::GRpcStatus(status) => status.message().contains("lease not found"),
        etcd_client::Error::LeaseKeepAliveError(message) => message.contains("lease not found"),
        _ => false,
    }
}

fn key_value(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision().max(0) as u64,
        mod_revision: kv.mod_revision().max(0) as u64,
        version: kv.version().max(0) as u64,
        lease: (kv.lease() != 0).then_some(LeaseId(kv.lease())),
    }
}

/// Retries `operation` while it fails with a transient error, with exponential backoff from
/// 50 ms up to 2 s, until it has been failing for `deadline`; then returns the last error.
/// Each retry is logged (`warn`, by [`dm_core::retry()`]); the error returned is not.
pub async fn with_backoff<T, Operation, Attempt>(
    deadline: Duration,
    operation: Operation,
) -> Result<T, CoordError>
where
    Operation: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, CoordError>>,
{
    dm_core::retry(Retry::new(BACKOFF).give_up_after(Some(deadline)), operation).await
}

/// Connects, retrying an unreachable cluster with backoff for up to `deadline`.
pub async fn connect_with_backoff(
    options: &EtcdOptions,
    deadline: Duration,
) -> Result<EtcdCoordStore, CoordError> {
    with_backoff(deadline, || EtcdCoordStore::connect(options)).await
}

impl EtcdCoordStore {
    /// Connects to the cluster and checks that it answers (one status request).
    pub async fn connect(options: &EtcdOptions) -> Result<Self, CoordError> {
        let endpoints = options.endpoints.join(",");
        if options.endpoints.is_empty() {
            return Err(CoordError::Refused {
                endpoint: endpoints,
                reason: "no endpoint given".into(),
            });
        }
        if options.keepalive < EtcdOptions::MIN_KEEPALIVE || options.keepalive_timeout.is_zero() {
            return Err(CoordError::Refused {
                endpoint: endpoints,
                reason: format!(
                    "keepalive {:?} (timeout {:?}): etcd closes the connection of a client that \
                     pings more often than every {:?} (--grpc-keepalive-min-time); use at least \
                     that, and a timeout above zero",
                    options.keepalive,
                    options.keepalive_timeout,
                    EtcdOptions::MIN_KEEPALIVE
                ),
            });
        }
        for endpoint in &options.endpoints {
            let address = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"))
                .unwrap_or(endpoint);
            let valid = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(CoordError::Refused {
                    endpoint: endpoint.clone(),
                    reason: "an endpoint is written host:port or http://host:port".into(),
                });
            }
        }
        let mut connect_options = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_timeout(options.request_timeout)
            .with_keep_alive(options.keepalive, options.keepalive_timeout)
            .with_keep_alive_while_idle(false);
        if let Some((user, password)) = &options.user {
            connect_options = connect_options.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &options.tls {
            let tls_options = tls_options(tls).map_err(|reason| CoordError::Refused {
                endpoint: endpoints.clone(),
                reason,
            })?;
            connect_options = connect_options.with_tls(tls_options);
        }
        // With TLS, a certificate refused is the configuration's fault: not retried.
        let failed = |error: etcd_client::Error| {
            let chain = error_chain(&error);
            match &options.tls {
                Some(tls)
                    if chain.contains("certificate")
                        || chain.contains("UnknownIssuer")
                        || chain.contains("tls") =>
                {
                    CoordError::Refused {
                        endpoint: endpoints.clone(),
                        reason: format!(
                            "TLS failed: {chain} (the members' certificates are verified \
                             against the CA in {})",
                            tls.ca
                        ),
                    }
                }
                _ => classify(&endpoints, error),
            }
        };
        let client = Client::connect(&options.endpoints, Some(connect_options))
            .await
            .map_err(failed)?;
        client.clone().status().await.map_err(failed)?;
        Ok(EtcdCoordStore {
            client,
            endpoints: endpoints.clone(),
        })
    }

    /// Compacts the cluster's history up to `revision` (watches from before it then fail).
    pub async fn compact(&self, revision: Revision) -> Result<(), CoordError> {
        self.client
            .clone()
            .compact(revision as i64, None)
            .await
            .map(|_| ())
            .map_err(|error| classify(&self.endpoints, error))
    }

    fn error(&self, error: etcd_client::Error) -> CoordError {
        classify(&self.endpoints, error)
    }
}

fn etcd_compare(compare: &crate::store::Compare) -> EtcdCompare {
    let key = compare.key.clone();
    match &compare.condition {
        Condition::Exists => EtcdCompare::create_revision(key, CompareOp::Greater, 0),
        Condition::Absent => EtcdCompare::create_revision(key, CompareOp::Equal, 0),
        Condition::ValueEquals(value) => EtcdCompare::value(key, CompareOp::Equal, value.clone()),
        Condition::ModRevisionEquals(revision) => {
            EtcdCompare::mod_revision(key, CompareOp::Equal, *revision as i64)
        }
        Condition::CreateRevisionEquals(revision) => {
            EtcdCompare::create_revision(key, CompareOp::Equal, *revision as i64)
        }
    }
}

fn etcd_operation(operation: &Operation) -> TxnOp {
    match operation {
        Operation::Put { key, value, lease } => TxnOp::put(
            key.clone(),
            value.clone(),
            lease.map(|lease| PutOptions::new().with_lease(lease.0)),
        ),
        Operation::Delete { key } => TxnOp::delete(key.clone(), None),
        Operation::DeletePrefix { prefix } => {
            TxnOp::delete(prefix.clone(), Some(DeleteOptions::new().with_prefix()))
        }
        Operation::Get { key } => TxnOp::get(key.clone(), None),
        Operation::Range { prefix } => {
            TxnOp::get(prefix.clone(), Some(GetOptions::new().with_prefix()))
        }
    }
}

impl CoordStore for EtcdCoordStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, CoordError> {
        let response = self
            .client
            .clone()
            .get(key, None)
            .await
            .map_err(|error| self.error(error))?;
        Ok(response.kvs().first().map(key_value))
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), CoordError> {
        let response = self
            .client
            .clone()
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|error| self.error(error))?;
        let revision = response
            .header()
            .map_or(0, |header| header.revision().max(0) as u64);
        Ok((response.kvs().iter().map(key_value).collect(), revision))
    }

    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, CoordError> {
        let options = lease.map(|lease| PutOptions::new().with_lease(lease.0));
        match self.client.clone().put(key, value, options).await {
            Ok(response) => Ok(response
                .header()
                .map_or(0, |header| header.revision().max(0) as u64)),
            Err(error) if is_lease_not_found(&error) => Err(CoordError::LeaseNotFound {
                lease: lease.unwrap_or(LeaseId(0)),
            }),
            Err(error) => Err(self.error(error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, CoordError> {
        let response = self
            .client
            .clone()
            .delete(key, None)
            .await
            .map_err(|error| self.error(error))?;
        Ok(response.deleted() > 0)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, CoordError> {
        let compares: Vec<EtcdCompare> = txn.compares.iter().map(etcd_compare).collect();
        let success: Vec<TxnOp> = txn.success.iter().map(etcd_operation).collect();
        let failure: Vec<TxnOp> = txn.failure.iter().map(etcd_operation).collect();
        let request = EtcdTxn::new()
            .when(compares)
            .and_then(success)
            .or_else(failure);
        let response = match self.client.clone().txn(request).await {
            Ok(response) => response,
            Err(error) if is_lease_not_found(&error) => {
                let lease = txn
                    .success
                    .iter()
                    .chain(&txn.failure)
                    .find_map(|operation| match operation {
                        Operation::Put { lease, .. } => *lease,
                        _ => None,
                    })
                    .unwrap_or(LeaseId(0));
                return Err(CoordError::LeaseNotFound { lease });
            }
            Err(error) => return Err(self.error(error)),
        };
        let results = response
            .op_responses()
            .into_iter()
            .map(|result| match result {
                TxnOpResponse::Put(_) => OperationResult::Put,
                TxnOpResponse::Delete(deleted) => {
                    OperationResult::Deleted(deleted.deleted().max(0) as u64)
                }
                TxnOpResponse::Get(read) => {
                    OperationResult::Read(read.kvs().iter().map(key_value).collect())
                }
                TxnOpResponse::Txn(_) => OperationResult::Read(Vec::new()),
            })
            .collect();
        Ok(TxnResult {
            succeeded: response.succeeded(),
            revision: response
                .header()
                .map_or(0, |header| header.revision().max(0) as u64),
            results,
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, CoordError> {
        if ttl.is_zero() {
            return Err(CoordError::InvalidRequest {
                reason: "a lease needs a positive time to live".into(),
            });
        }
        let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let response = self
            .client
            .clone()
            .lease_grant(seconds as i64, None)
            .await
            .map_err(|error| self.error(error))?;
        Ok(LeaseId(response.id()))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, CoordError> {
        let classify_keep_alive = |error: etcd_client::Error| {
            if is_lease_not_found(&error) {
                CoordError::LeaseNotFound { lease }
            } else {
                self.error(error)
            }
        };
        let (mut keeper, mut responses) = self
            .client
            .clone()
            .lease_keep_alive(lease.0)
            .await
            .map_err(classify_keep_alive)?;
        keeper.keep_alive().await.map_err(classify_keep_alive)?;
        match responses.message().await.map_err(classify_keep_alive)? {
            Some(response) if response.ttl() > 0 => Ok(Duration::from_secs(response.ttl() as u64)),
            _ => Err(CoordError::LeaseNotFound { lease }),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), CoordError> {
        match self.client.clone().lease_revoke(lease.0).await {
            Ok(_) => Ok(()),
            Err(error) if is_lease_not_found(&error) => Err(CoordError::LeaseNotFound { lease }),
            Err(error) => Err(self.error(error)),
        }
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<Watcher, CoordError> {
        // Fix the start now, so that a re-created stream resumes where this one started.
        let start = if from == 0 {
            self.current_revision().await? + 1
        } else {
            from
        };
        let (client, endpoints, owned) = (
            self.client.clone(),
            self.endpoints.clone(),
            prefix.to_owned(),
        );
        Ok(Watcher::spawn(prefix, move |sender| {
            feed_etcd_watch(client, endpoints, owned, start, sender)
        }))
    }

    async fn current_revision(&self) -> Result<Revision, CoordError> {
        let response = self
            .client
            .clone()
            .get("\0", None)
            .await
            .map_err(|error| self.error(error))?;
        Ok(response
            .header()
            .map_or(0, |header| header.revision().max(0) as u64))
    }
}

/// Feeds a watcher from etcd, re-creating the watch after a broken stream.
async fn feed_etcd_watch(
    client: Client,
    endpoints: String,
    prefix: String,
    mut next: Revision,
    sender: mpsc::Sender<Result<WatchEvent, CoordError>>,
) {
    // As long as it takes: the watcher's owner decides when to give up (by dropping it).
    let mut retry = Retry::new(BACKOFF);
    loop {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(next as i64);
        let mut stream = match client.clone().watch(prefix.as_str(), Some(options)).await {
            Ok(stream) => stream,
            Err(error) => {
                let error = classify(&endpoints, error);
                if matches!(error, CoordError::Unavailable { .. }) {
                    tracing::warn!(
                        error = %error,
                        revision = next,
                        "cannot create the etcd watch, retrying"
                    );
                    retry.again(error.class()).await;
                    continue;
                }
                let _ = sender.send(Err(error)).await;
                return;
            }
        };
        loop {
            let response = tokio::select! {
                response = stream.message() => response,
                () = sender.closed() => return,
            };
            match response {
                Ok(Some(response)) => {
                    retry.reset();
                    if response.compact_revision() > 0 {
                        let _ = sender
                            .send(Err(CoordError::Compacted {
                                requested: next,
                                compacted: (response.compact_revision() - 1).max(0) as u64,
                            }))
                            .await;
                        return;
                    }
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        let kv = key_value(kv);
                        let kind = match event.event_type() {
                            EventType::Put => EventKind::Put,
                            EventType::Delete => EventKind::Delete,
                        };
                        next = next.max(kv.mod_revision + 1);
                        if sender.send(Ok(WatchEvent { kind, kv })).await.is_err() {
                            return;
                        }
                    }
                    if response.canceled() {
                        break;
                    }
                }
                // The stream broke or ended: re-create it from the next revision.
                Ok(None) => {
                    tracing::debug!(revision = next, "etcd watch stream ended, re-creating it");
                    break;
                }
                Err(error) => {
                    tracing::warn!(
                        error = %error,
                        revision = next,
                        "etcd watch stream broke, re-creating it"
                    );
                    break;
                }
            }
        }
        retry.again(ErrorClass::Transient).await;
    }
}
