"""Certificates for the TLS tests, made with the openssl command in a
temporary directory that the context manager removes.

    with Certs() as c:
        c.ca("ca")                                  # ca.crt, ca.key
        srv = c.issue("server", "CN=server")        # .crt, .key, .pem
        cli = c.issue("client1", "O=quorumfs/CN=client1")
        srv.pem   # key then certificate: ZooKeeper's PEM key store

Subjects are written as openssl's -subj takes them, most general first;
the server's certificates name localhost and 127.0.0.1 (subject
alternative names) so clients that check the host accept them."""
import os
import shutil
import subprocess
import tempfile


class Issued:
    def __init__(self, base):
        self.crt, self.key, self.pem = base + ".crt", base + ".key", base + ".pem"


SIGNER_CNF = """\
[ ca ]
default_ca = signer
[ signer ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
organizationName = optional
commonName = supplied
"""


class Certs:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="qtls-")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def path(self, name):
        return os.path.join(self.dir, name)

    def crt(self, name):
        return self.path(name + ".crt")

    def key(self, name):
        return self.path(name + ".key")

    def pem(self, name):
        return self.path(name + ".pem")

    def _openssl(self, *args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=self.dir,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _signer(self):
        """What openssl ca needs in the directory."""
        if os.path.exists(self.path("signer.cnf")):
            return
        with open(self.path("signer.cnf"), "w") as f:
            f.write(SIGNER_CNF)
        with open(self.path("index.txt"), "w"):
            pass
        with open(self.path("serial"), "w") as f:
            f.write("%016x\n" % int.from_bytes(os.urandom(7), "big"))

    def ca(self, name="ca"):
        """A self-signed CA: NAME.crt (the trust store) and NAME.key."""
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", name + ".key", "-out", name + ".crt", "-days", "30",
                      "-subj", "/CN=" + name)
        return self.path(name + ".crt")

    def issue(self, name, subject, ca="ca", days=30, hosts=("localhost", "127.0.0.1"),
              expired=False):
        """A certificate for SUBJECT ("O=x/CN=y") signed by CA, valid for
        DAYS from now, naming HOSTS; with expired, valid only in January
        2020 instead (openssl x509 can only start a certificate now,
        openssl ca takes both dates)."""
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/" + subject)
        sans = ",".join(("IP:" if h[0].isdigit() else "DNS:") + h for h in hosts)
        with open(self.path(name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % sans if hosts else "")
        if expired:
            self._signer()
            self._openssl("ca", "-config", "signer.cnf", "-batch", "-notext", "-cert",
                          ca + ".crt", "-keyfile", ca + ".key", "-in", name + ".csr",
                          "-out", name + ".crt", "-extfile", name + ".ext",
                          "-startdate", "20200101000000Z", "-enddate", "20200201000000Z")
        else:
            self._openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt",
                          "-CAkey", ca + ".key", "-CAcreateserial", "-out", name + ".crt",
                          "-days", str(days), "-extfile", name + ".ext")
        base = self.path(name)
        with open(base + ".pem", "w") as out:
            for part in (".key", ".crt"):
                with open(base + part) as f:
                    out.write(f.read())
        return Issued(base)


NETTY = "org.apache.zookeeper.server.NettyServerCnxnFactory"


def tls_server(kind, key_store, trust_store, client_auth="need", extra_cfg=None,
               jvm_props=None):
    """An unstarted quorumd or ZooKeeper (kind) that also listens for TLS
    clients on .secure_port (secureClientPort) with the given PEM stores;
    ZooKeeper needs its Netty connection factory for that."""
    from harness import Quorumd, ZooKeeper, free_port
    port = free_port()
    cfg = {"secureClientPort": str(port),
           "ssl.keyStore.location": key_store, "ssl.keyStore.type": "PEM",
           "ssl.trustStore.location": trust_store, "ssl.trustStore.type": "PEM",
           "ssl.clientAuth": client_auth}
    cfg.update(extra_cfg or {})
    if kind == "zookeeper":
        props = {"zookeeper.serverCnxnFactory": NETTY}
        props.update(jvm_props or {})
        srv = ZooKeeper(extra_cfg=cfg, jvm_props=props)
    else:
        srv = Quorumd(extra_cfg=cfg)
    srv.secure_port = port
    srv.secure_hosts = "127.0.0.1:%d" % port
    return srv
