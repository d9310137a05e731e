/*
 * handshake: a connection's ConnectRequest — a new session (a createSession
 * txn, answered when it applies), or an existing one re-attached here by
 * its id and password, as ZooKeeper does; refused while this server does
 * not serve or is behind what the client has seen. In read-only mode
 * (ensemble.c) a read-only client gets a read-only session instead.
 */
#include "pipeline.h"

#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "replica.h"

/* ---- the handshake ------------------------------------------------------ */

void handshake_respond(struct conn *c, int32_t timeout, int64_t session_id,
				  const uint8_t *passwd)
{
	static const uint8_t zeros[16];
	size_t at = jute_frame_begin(&c->out);
	struct zk_connect_response resp = {
		.protocol_version = 0,
		.timeout = timeout,
		.session_id = session_id,
		.passwd = { passwd ? passwd : zeros, 16 },
		.read_only = c->read_only,
	};
	zk_encode_connect_response(&c->out, &resp);
	if (c->old_client && !c->out.err)
		c->out.len--; /* ZooKeeper answers an old client without readOnly */
	jute_frame_end(&c->out, at);
	c->sent_count++;
	c->srv->stats.packets_sent++;
	conn_mark_dirty(c);
}

void handshake_attach(struct conn *c, struct session *s)
{
	if (s->conn && s->conn != c) {
		struct conn *old = s->conn;
		log_rl(LOG_INFO, "server", "session 0x%llx moved from %s to %s",
			(unsigned long long)s->id, old->peer, c->peer);
		old->session = NULL;
		s->conn = NULL;
		conn_close(old);
	}
	s->conn = c;
	c->session = s;
	c->session_id = s->id;
	c->timeout = s->timeout;
}

/*
 * Read-only mode: a client that set readOnly gets a session of this
 * connection alone, with an id of this member's (as ZooKeeper's read-only
 * server hands out a local session): nothing about it is replicated or
 * kept, it ends with the connection (or after its timeout without a
 * frame, conn.c), and the answer says readOnly, so the client knows to
 * look for a member with a quorum and to start a new session there. A
 * client that did not set readOnly is turned away, and so is a session of
 * the ensemble: it lives on with the quorum, which this member cannot
 * reach; the connection is closed, so the client keeps its session and
 * tries another member (ZooKeeper 3.9 does the same; 3.8 answers as if
 * the session had expired, which would end it).
 */
static void handshake_read_only(struct conn *c, const struct zk_connect_request *req)
{
	struct server *srv = c->srv;
	const char *why = NULL;
	uint8_t passwd[16];
	if (!req->read_only)
		why = "not a read-only client";
	else if (req->session_id != 0)
		why = "a session of the ensemble cannot re-attach";
	else if (req->last_zxid_seen > tree_last_zxid(srv->db.tree))
		why = "the client has seen more than this member has";
	else if (getrandom(passwd, sizeof(passwd), 0) != sizeof(passwd))
		why = "no random bytes for a password";
	if (why) {
		log_rl(LOG_INFO, "server", "%s: read-only mode: %s; closing", c->peer, why);
		srv->stats.handshakes_failed++;
		conn_close(c);
		return;
	}
	c->read_only = true;
	c->session_id = session_next_id(&srv->db.sessions);
	c->timeout = prep_session_timeout(&srv->prep, req->timeout);
	srv->stats.read_only_sessions++;
	log_rl(LOG_INFO, "server", "%s: read-only session 0x%llx", c->peer,
	       (unsigned long long)c->session_id);
	handshake_respond(c, c->timeout, c->session_id, passwd);
}

/* A client that comes back with its session: re-attached here if the
 * session is alive and the password is its own, else told it expired. */
static void handshake_reattach(struct conn *c, const struct zk_connect_request *req)
{
	struct server *srv = c->srv;
	struct session *s = session_get(&srv->db.sessions, req->session_id);
	if (s == NULL || s->closing || req->passwd.len != 16 ||
	    memcmp(s->passwd, req->passwd.p, 16) != 0) {
		log_rl(LOG_INFO, "server", "%s: invalid session 0x%llx (%s)", c->peer,
			(unsigned long long)req->session_id,
			s == NULL || s->closing ? "expired" : "wrong password");
		srv->stats.handshakes_failed++;
		handshake_respond(c, 0, 0, NULL);
		conn_close_after_flush(c);
		return;
	}
	handshake_attach(c, s);
	srv->stats.sessions_revalidated++;
	/* The session lives on this member now: on the leader, its own
	 * table says so; a follower tells the leader. */
	if (srv->replica && replica_leading(srv->replica)) {
		s->owner = (uint32_t)srv->cfg->myid;
	} else if (srv->replica) {
		replica_claim(srv->replica, s->id);
		srv->stats.sessions_claimed++;
	}
	/* The timeout is negotiated again, and the session lives by the
	 * new one from now on (ZooKeeper's revalidateSession). */
	s->live_timeout = prep_session_timeout(&srv->prep, req->timeout);
	c->timeout = s->live_timeout;
	session_touch(&srv->db.sessions, s, (int64_t)uv_now(srv->loop));
	handshake_respond(c, c->timeout, s->id, s->passwd);
}

/* A new session: its createSession txn goes through commit (forwarded to
 * the leader, or prepped here); the response is sent when it applies
 * (apply_create_session()). */
static void handshake_new_session(struct conn *c, const struct zk_connect_request *req)
{
	struct server *srv = c->srv;
	if (srv->log_failed) {
		log_rl(LOG_WARN, "server", "%s: no new sessions while the log fails", c->peer);
		conn_close(c);
		return;
	}
	struct request *r = request_get(srv, c, 0, ZK_OP_CREATE_SESSION);
	if (r == NULL) {
		conn_close(c);
		return;
	}
	c->session_id = session_next_id(&srv->db.sessions);
	r->session_id = c->session_id;
	if (!write_preps_here(srv)) {
		r->seq = ++srv->next_seq;
		if (replica_forward(srv->replica, r->seq, c->session_id, 0, ZK_OP_CREATE_SESSION, NULL,
				    0, &c->auth, req->timeout) != 0) {
			request_put(srv, r);
			conn_close(c);
			return;
		}
		list_push_back(&srv->proposed, &r->prop_link);
		r->state = REQ_WRITE;
		request_enqueue(c, r);
		return;
	}
	struct prep_request pr = { .session_id = c->session_id, .op = ZK_OP_CREATE_SESSION,
				   .auth = &c->auth, .u.connect = *req };
	int rc = prep_write(&srv->prep, srv->db.tree, &pr, write_next_zxid(srv),
			    clock_wall_ms(), &r->arena, &r->txn, NULL);
	if (rc != 0 || write_submit(srv, r) != 0) {
		request_put(srv, r);
		conn_close(c);
		return;
	}
	r->state = REQ_WRITE;
	request_enqueue(c, r);
}

void server_handle_connect(struct conn *c, const uint8_t *frame, size_t len)
{
	struct server *srv = c->srv;
	struct jute_in in;
	jute_in_init(&in, frame, len, &c->frame_arena);
	struct zk_connect_request req;
	if (zk_decode_connect_request(&in, &req) != 0) {
		log_rl(LOG_WARN, "server", "%s: malformed connect request; closing", c->peer);
		srv->stats.handshakes_failed++;
		conn_close(c);
		return;
	}
	c->handshaken = true;
	c->old_client = !req.has_read_only;
	srv->stats.connect_requests++;
	if (srv->replica && !replica_serving(srv->replica)) {
		if (srv->read_only) {
			handshake_read_only(c, &req);
			return;
		}
		/* As ZooKeeper: no sessions while there is no quorum; the
		 * client tries another server. */
		log_rl(LOG_DEBUG, "server", "%s: not serving (no leader yet); closing", c->peer);
		conn_close(c);
		return;
	}
	int64_t last = tree_last_zxid(srv->db.tree);
	if (req.last_zxid_seen > last) {
		log_rl(LOG_INFO, "server",
			"%s: refusing session request: the client has seen zxid 0x%llx, our last "
			"is 0x%llx",
			c->peer, (unsigned long long)req.last_zxid_seen, (unsigned long long)last);
		srv->stats.handshakes_failed++;
		conn_close(c);
		return;
	}
	if (req.session_id != 0)
		handshake_reattach(c, &req);
	else
		handshake_new_session(c, &req);
}
