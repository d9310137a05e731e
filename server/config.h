/*
 * config: quorumd's configuration, read from a ZooKeeper-style zoo.cfg
 * (key=value lines, '#' comments) plus the myid file in dataDir, so an
 * operator's existing ZooKeeper config works unchanged.
 *
 * Unknown keys are kept and warned about; an invalid value is an error
 * that names the key and the line. Without server.N lines the server is
 * standalone.
 */
#ifndef QUORUM_CONFIG_H
#define QUORUM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

#define CONFIG_MAX_SERVERS 255

/* Where storage keeps its files under dataDir and dataLogDir, the way
 * ZooKeeper keeps them under version-2/. `conf` and the AdminServer's
 * configuration print these directories, as ZooKeeper prints its
 * version-2 ones. Must match server/storage.c. */
#define STORAGE_SUBDIR "quorum-v1"

struct config_server {
	int32_t id;        /* N of server.N */
	char host[256];
	int peer_port;     /* quorum (ZAB) port */
	int election_port;
	bool observer;     /* ":observer" suffix */
	int client_port;   /* after ';' in the 3.5+ form, 0 when absent; for this
			      server always the effective clientPort */
	char client_host[256]; /* host before that port; "" when absent (0.0.0.0) */
	bool client_port_given; /* the line itself had ";[host:]port": conf and
				   voting_view show it only then, as ZooKeeper does */
};

struct config {
	char path[4096];      /* the file read, for `conf` and log lines */
	int32_t tick_time;    /* tickTime, ms, default 3000 (ZooKeeperServer.DEFAULT_TICK_TIME;
				 zoo_sample.cfg says 2000) */
	int32_t init_limit;   /* initLimit, ticks; required with server.N lines, else 0 */
	int32_t sync_limit;   /* syncLimit, ticks; required with server.N lines, else 0 */
	char data_dir[4096];  /* dataDir, required */
	char data_log_dir[4096]; /* dataLogDir, defaults to dataDir */
	char client_address[256]; /* clientPortAddress, default "0.0.0.0" */
	int client_port;      /* clientPort, default 2181 (ZooKeeper has none), or the
				 client port of this server's server.N line */
	int32_t listen_backlog; /* clientPortListenBacklog, -1 = the system default */
	int32_t max_client_cnxns; /* maxClientCnxns per IP, default 60, 0 = no limit */
	int32_t max_cnxns;    /* maxCnxns: client connections in all, default 0 =
				 no limit (ZooKeeper's) */
	int32_t min_session_timeout; /* minSessionTimeout, default 2 * tickTime */
	int32_t max_session_timeout; /* maxSessionTimeout, default 20 * tickTime */
	int64_t snap_count;   /* snapCount, default 100000 */
	int32_t snap_log_percent; /* snapLogPercent, default 100, 0 = snapCount alone */
	double snapshot_size_factor; /* snapshotSizeFactor: a follower lacking more
					than this times the newest snapshot's size
					is synced by SNAP; default 0.33; < 0: one
					lacking more than a few MiB */
	int64_t prealloc_kb;  /* preAllocSize in KiB, default 65536 */
	int32_t jute_max_buffer; /* jute.maxbuffer, default 0xfffff = 1048575 */
	int32_t purge_snap_retain; /* autopurge.snapRetainCount, default 3, min 3 */
	int32_t purge_interval;    /* autopurge.purgeInterval, hours, default 0 */
	int64_t fsync_warning_ms;  /* fsync.warningthresholdms: a slower fsync is logged */
	int32_t global_outstanding_limit; /* globalOutstandingLimit, default 1000 */
	int64_t max_client_output; /* maxClientOutputBytes: replies and notifications
				      a connection may have unsent before it is
				      closed; default 4 MiB, at least
				      2 * jute.maxbuffer + 1 MiB */
	int64_t sessionless_timeout_ms; /* zookeeper.nio.sessionlessCnxnTimeout:
					   a connection without a session, or
					   a frame half received, is closed
					   after this; default 10000 */
	int64_t container_check_ms; /* znode.container.checkIntervalMs, default 60000 */
	bool enforce_quota;     /* enforceQuota (zookeeper.enforceQuota): a
				   create or setData past a hard quota limit is
				   refused with QuotaExceeded; default false */
	bool read_only_mode;    /* readonlymode.enabled (a JVM property in
				   ZooKeeper): a member without a quorum serves
				   reads to read-only clients; default false */
	/* SASL (sasl.c): the JAAS file (ZooKeeper's JVM property
	 * java.security.auth.login.config) and its section of server users
	 * (zookeeper.sasl.serverconfig, default "Server"); "" without. */
	char jaas_path[4096];
	char jaas_section[128];
	char sasl_super_user[256]; /* zookeeper.superUser: the SASL user who is
				      the superuser; "" for none */
	char super_digest[300]; /* DigestAuthenticationProvider.superDigest:
				   "user:base64(sha1(user:password))", the
				   digest id whose holder is the superuser;
				   "" = none */
	/* TLS on the client port (conn.c, util/tls.c), by ZooKeeper's keys:
	 * secureClientPort (0 = none) on secureClientPortAddress (default
	 * clientPortAddress's), client.portUnification (clientPort takes TLS as well
	 * as plaintext), the ssl.* keys in `tls`, client.certReload (the key
	 * and trust stores are read again when they change: a JVM property in
	 * ZooKeeper). */
	int secure_client_port;
	char secure_client_address[256];
	bool port_unification;
	struct tls_config tls;
	bool tls_reload;
	char x509_super_user[512]; /* X509AuthenticationProvider.superUser: the
				      certificate subject that is the superuser */
	/* TLS between members (replication/peer.c): sslQuorum (members dial
	 * each other in TLS), portUnification (the quorum port takes
	 * plaintext members too, while an ensemble moves to TLS), the
	 * ssl.quorum.* keys, ssl.quorum.hostnameVerification (a member's
	 * certificate must name its server.N host; default true),
	 * sslQuorumReloadCertFiles. */
	bool ssl_quorum, quorum_unify, quorum_check_host, quorum_tls_reload;
	struct tls_config quorum_tls;
	bool four_letter_all;  /* 4lw.commands.whitelist=* */
	char four_letter_words[512]; /* the whitelist as given, trimmed, comma
					separated, case-sensitive; default "srvr".
					"srvr" is always allowed (ZooKeeper 3.5+) */
	/* The AdminServer (http.c): admin.enableServer, default false here
	 * (quorumd.conf(5) says why), admin.serverAddress (0.0.0.0),
	 * admin.serverPort (8080), admin.commandURL ("/commands"),
	 * admin.idleTimeout (ms an idle HTTP connection is kept, 30000). */
	bool admin_enable;
	char admin_address[256];
	int admin_port;
	char admin_command_url[256];
	int64_t admin_idle_ms;
	/* ZooKeeper 3.9's snapshot and restore commands: on (true), at most
	 * once per interval (300000 ms) each; a restore's body is at most
	 * admin.restore.maxBytes (ours; 1 GiB). */
	bool admin_snapshot_enable, admin_restore_enable;
	int64_t admin_snapshot_interval_ms, admin_restore_interval_ms;
	int64_t admin_restore_max_bytes;
	/* Prometheus: metricsProvider.className naming ZooKeeper's
	 * PrometheusMetricsProvider turns it on; metricsProvider.httpHost
	 * (0.0.0.0) and metricsProvider.httpPort (7000) say where. */
	bool metrics_enable;
	char metrics_host[256];
	int metrics_port;
	/* Dynamic reconfiguration: reconfigEnabled; the dynamic config file the
	 * server lines came from ("" when zoo.cfg held them) and the version its
	 * name carries (0 for zoo.cfg's own lines). While quorumd runs,
	 * servers[], n_servers and config_version follow the active config
	 * (server/replica.c). */
	bool reconfig_enabled;
	char dynamic_file[4096];
	int64_t config_version;
	int32_t myid;          /* from dataDir/myid, 0 when standalone without one */
	int n_servers;         /* 0 = standalone (also for a lone server.N line, as
				  ZooKeeper does, unless standaloneEnabled=false);
				  servers[] is sorted by id */
	struct config_server servers[CONFIG_MAX_SERVERS];
};

/* Reads path into cfg (which it initialises with the defaults first).
 * Returns 0, or -1 with a message naming the key and line in err. Warnings
 * for unknown keys go to the log. Does not touch dataDir beyond reading
 * myid, if it is there: required with server.N lines, and an error when
 * malformed even without them (as in ZooKeeper). */
int config_load(struct config *cfg, const char *path, char *err, size_t err_len);

/* Whether the four-letter word is allowed by 4lw.commands.whitelist. */
bool config_4lw_allowed(const struct config *cfg, const char *word);

/* Writes the `conf` four-letter word's key=value lines, as ZooKeeper does
 * (dataDir and dataLogDir are the directories the files are really in,
 * with their sizes). Returns the length written, or -1 if buf was too
 * small (buf then holds a NUL-terminated prefix). Reads the directories'
 * sizes from disk. */
int config_format(const struct config *cfg, char *buf, size_t len);

#endif
