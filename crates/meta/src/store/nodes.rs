//! Nodes (registration, liveness) and the deletes they have yet to apply.

use super::*;

impl MetaStore {
    // ---------------------------------------------------------------------- nodes

    /// Registers a store node (or updates its addresses). Without an id, a node with
    /// the same gRPC address keeps its id, otherwise a new id is allocated.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn register_node(
        &self,
        id: Option<NodeId>,
        grpc_addr: &str,
        http_addr: &str,
    ) -> Result<(NodeInfo, i64)> {
        if grpc_addr.is_empty() {
            return Err(Error::InvalidArgument("node gRPC address required".into()));
        }
        for attempt in 0..MAX_ATTEMPTS {
            let nodes = self.kv.range(keys::NODES.as_bytes()).await?;
            let mut existing = None;
            for kv in &nodes.kvs {
                let n: NodeInfo = decode(kv)?;
                let same = match id {
                    Some(id) => n.id == id,
                    None => n.grpc_addr == grpc_addr,
                };
                if same {
                    existing = Some((n, kv.mod_revision));
                }
            }
            if let Some((n, rev)) = &existing {
                if n.grpc_addr == grpc_addr && n.http_addr == http_addr {
                    return Ok((n.clone(), *rev));
                }
            }
            let counter = self.kv.get(keys::NODE_ID_COUNTER.as_bytes()).await?;
            let (next, counter_rev) = match &counter {
                Some(kv) => (
                    std::str::from_utf8(&kv.value)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| Error::corrupt(keys::NODE_ID_COUNTER, "not a number"))?,
                    kv.mod_revision,
                ),
                None => (1, 0),
            };
            let node_id = match (&existing, id) {
                (Some((n, _)), _) => n.id,
                (None, Some(id)) => id,
                (None, None) => next,
            };
            let node = NodeInfo {
                id: node_id,
                grpc_addr: grpc_addr.to_string(),
                http_addr: http_addr.to_string(),
            };
            let key = keys::node(node_id);
            let mut compares = vec![Compare::mod_revision(
                key.as_bytes(),
                existing.as_ref().map_or(0, |(_, r)| *r),
            )];
            let mut ops = vec![TxnOp::put(key.as_bytes(), encode(&node)?)];
            if node_id >= next {
                compares.push(Compare::mod_revision(keys::NODE_ID_COUNTER, counter_rev));
                ops.push(TxnOp::put(keys::NODE_ID_COUNTER, (node_id + 1).to_string()));
            }
            let r = self.kv.txn(Txn::new().when(compares).and_then(ops)).await?;
            if r.succeeded {
                tracing::info!(id = node_id, grpc_addr, http_addr, "registered node");
                return Ok((node, r.revision));
            }
            backoff(attempt).await;
        }
        Err(Error::Contention("node registration".into()))
    }

    /// Renews a node's liveness: keeps its lease alive, or (first call, or after it
    /// expired) grants a new lease of `ttl_secs` and puts `alive/<id>` with it. A node
    /// that stops calling this drops out of the live set when the lease expires.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn heartbeat(&self, node_id: NodeId, ttl_secs: i64) -> Result<i64> {
        if ttl_secs <= 0 {
            return Err(Error::InvalidArgument(format!(
                "heartbeat TTL must be positive, got {ttl_secs}"
            )));
        }
        if self.kv.get(keys::node(node_id).as_bytes()).await?.is_none() {
            return Err(Error::NodeNotFound(node_id));
        }
        let key = keys::alive(node_id);
        if let Some(kv) = self.kv.get(key.as_bytes()).await? {
            if kv.lease != 0 {
                match self.kv.keep_alive(kv.lease).await {
                    Ok(()) => return Ok(kv.mod_revision),
                    Err(Error::LeaseNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let lease = self.kv.grant_lease(ttl_secs).await?;
        let rev = self.kv.put(key.as_bytes(), b"{}", Some(lease)).await?;
        tracing::info!(node_id, lease, "node is live");
        Ok(rev)
    }

    /// Removes node `id` (and its liveness key). Refused while any shard lists it
    /// as an owner: its shards must move first.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn delete_node(&self, id: NodeId) -> Result<i64> {
        if self.kv.get(keys::node(id).as_bytes()).await?.is_none() {
            return Err(Error::NodeNotFound(id));
        }
        let groups = self.kv.range(keys::SHARD_GROUPS.as_bytes()).await?;
        let mut owned = Vec::new();
        for kv in &groups.kvs {
            let g: ShardGroupInfo = decode(kv)?;
            owned.extend(
                g.shards
                    .iter()
                    .filter(|s| s.owners.contains(&id))
                    .map(|s| s.id),
            );
        }
        if !owned.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "node {id} still owns shards {owned:?}: move them first (sundial-ctl remove-node does)"
            )));
        }
        let r = self
            .kv
            .txn(Txn::new().and_then(vec![
                TxnOp::delete(keys::node(id)),
                TxnOp::delete(keys::alive(id)),
                TxnOp::delete_prefix(keys::pending_deletes_of(id)),
            ]))
            .await?;
        tracing::info!(node_id = id, "node removed");
        Ok(r.revision)
    }

    // ------------------------------------------------------------ pending deletes

    /// Registers deletes owners have yet to apply (in transactions of at most
    /// [`TXN_OPS`] keys: etcd's default limit is 128 operations).
    #[tracing::instrument(skip_all, fields(deletes = deletes.len()), err(level = "debug"))]
    pub async fn add_pending_deletes(&self, deletes: &[PendingDelete]) -> Result<i64> {
        let mut rev = 0;
        for chunk in deletes.chunks(TXN_OPS) {
            let ops = chunk
                .iter()
                .map(|d| {
                    Ok(TxnOp::put(
                        keys::pending_delete(d.node, d.shard, d.id),
                        encode(d)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            rev = self.kv.txn(Txn::new().and_then(ops)).await?.revision;
        }
        Ok(rev)
    }

    /// Removes pending deletes (applied, or no longer needed); missing ones are
    /// no error.
    #[tracing::instrument(skip_all, fields(deletes = which.len()), err(level = "debug"))]
    pub async fn clear_pending_deletes(&self, which: &[(NodeId, ShardId, u64)]) -> Result<i64> {
        let mut rev = 0;
        for chunk in which.chunks(TXN_OPS) {
            let ops = chunk
                .iter()
                .map(|&(n, s, id)| TxnOp::delete(keys::pending_delete(n, s, id)))
                .collect::<Vec<_>>();
            rev = self.kv.txn(Txn::new().and_then(ops)).await?.revision;
        }
        Ok(rev)
    }

    /// Takes or renews the leadership `name` for `holder` (`lease/<name>`,
    /// attached to a lease of `ttl_secs`): true while `holder` has it; false
    /// while another does. A holder that stops renewing loses it with its lease.
    #[tracing::instrument(level = "debug", skip(self), err(level = "debug"))]
    pub async fn hold_lease(&self, name: &str, holder: &str, ttl_secs: i64) -> Result<bool> {
        if ttl_secs <= 0 || name.is_empty() || name.contains('/') || holder.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "bad lease request: name {name:?}, holder {holder:?}, ttl {ttl_secs}"
            )));
        }
        let key = format!("lease/{name}");
        if let Some(kv) = self.kv.get(key.as_bytes()).await? {
            if kv.value != holder.as_bytes() {
                return Ok(false);
            }
            match self.kv.keep_alive(kv.lease).await {
                Ok(()) => return Ok(true),
                Err(Error::LeaseNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let lease = self.kv.grant_lease(ttl_secs).await?;
        let r = self
            .kv
            .txn(
                Txn::new()
                    .when(vec![Compare::absent(key.as_bytes())])
                    .and_then(vec![TxnOp::Put {
                        key: key.clone().into_bytes(),
                        value: holder.as_bytes().to_vec(),
                        lease: Some(lease),
                    }]),
            )
            .await?;
        if r.succeeded {
            tracing::info!(name, holder, "lease taken");
        }
        Ok(r.succeeded)
    }
}
