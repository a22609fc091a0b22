//! Real services the scale-out tests run on loopback: `redis-server` and `nginx` (Debian
//! packages; `.ci/run` installs them). Each runs from a temporary directory of its own on
//! its own port, and is killed when dropped. No system service is touched.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `program` if it is installed (on `PATH`, or in `/usr/sbin` where Debian
/// puts nginx).
pub fn installed(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `Some(paths)` when every program is installed; otherwise prints loudly that `test` is
/// skipped and why (in CI nothing is skipped: `.ci/run` installs them).
pub fn require(test: &str, programs: &[&str]) -> Option<Vec<PathBuf>> {
    let found: Vec<Option<PathBuf>> = programs.iter().map(|p| installed(p)).collect();
    let missing: Vec<&str> = programs
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Some(found.into_iter().flatten().collect());
    }
    let message = format!(
        "SKIPPED {test}: {} not installed (Debian: apt-get install redis-server redis-tools nginx; .ci/run installs them)",
        missing.join(", ")
    );
    eprintln!("\n*** {message} ***\n");
    println!("{message}");
    None
}

/// The Python of the venv with Autobahn|Python in it (`tests/wamp/setup.sh` makes it in
/// `target/wamp-venv`; `WAMP_VENV` names another), running the script first if it is
/// missing; `None`, with a loud SKIPPED for `test`, if that fails (no network).
pub fn autobahn_python(test: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("WAMP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/wamp-venv"))
        .join("bin/python");
    if !python.exists() {
        let status = Command::new(root.join("tests/wamp/setup.sh"))
            .stdout(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) || !python.exists() {
            let message = format!(
                "SKIPPED {test}: Autobahn|Python could not be installed (tests/wamp/setup.sh needs PyPI; .ci/run runs it)"
            );
            eprintln!("\n*** {message} ***\n");
            println!("{message}");
            return None;
        }
    }
    Some(python)
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temporary directory.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wirecall-{what}-{}-{:x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Wait until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process(Option<Child>);

impl Process {
    /// Run `command`.
    pub fn spawn(command: &mut Command) -> Process {
        Process(Some(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {command:?}: {e}")),
        ))
    }

    /// The child, while it runs.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the process runs")
    }

    /// Kill it now (SIGKILL) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Ask it to stop (SIGTERM), wait up to 5 s, then kill it. For a process with
    /// children of its own (nginx' master stops its workers; SIGKILL would orphan them).
    pub fn terminate(&mut self) {
        let Some(child) = self.0.as_mut() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.0 = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `redis-server` without automatic persistence: killed, it comes back empty (a Redis
/// that lost its data), or from the snapshot a `SAVE` wrote (a Redis restored from an
/// older snapshot, as Debian's RDB setup does after a crash).
#[derive(Debug)]
pub struct Redis {
    program: PathBuf,
    dir: PathBuf,
    port: u16,
    process: Process,
}

impl Redis {
    /// Start one on a free port.
    pub fn start(program: &Path) -> Redis {
        let dir = temp_dir("redis");
        let port = free_port();
        let process = Self::run(program, &dir, port);
        Redis {
            program: program.to_path_buf(),
            dir,
            port,
            process,
        }
    }

    fn run(program: &Path, dir: &Path, port: u16) -> Process {
        let process = Process::spawn(
            Command::new(program)
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null()),
        );
        wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), "redis-server");
        process
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `redis://127.0.0.1:PORT/DB`: database `db` of the same server.
    pub fn url_db(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Run one command on a connection of its own (database `db`) and return the reply as
    /// text: `OK`, `3`, `ERR …` for an error, a bulk string, or an array's elements one a
    /// line.
    pub fn command(&self, db: u32, args: &[&str]) -> String {
        redis_command(self.addr(), db, args)
    }

    /// Kill it (SIGKILL); everything it held is lost.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Kill it (SIGKILL) and start it again on the same port: empty, or with what its last
    /// `SAVE` wrote (a Redis restored from an older snapshot).
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = Self::run(&self.program, &self.dir, self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.process.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run one command on a connection of its own to the Redis at `addr` (database `db`) and return the reply as
/// text: `OK`, `3`, `ERR …` for an error, a bulk string, or an array's elements one a
/// line.
pub fn redis_command(addr: SocketAddr, db: u32, args: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = TcpStream::connect(addr).expect("connect to redis-server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let select = ["SELECT".to_string(), db.to_string()];
    for command in [select.iter().map(String::as_str).collect(), args.to_vec()] {
        out.extend(format!("*{}\r\n", command.len()).bytes());
        for arg in command {
            out.extend(format!("${}\r\n{arg}\r\n", arg.len()).bytes());
        }
    }
    stream.write_all(&out).unwrap();
    let mut reader = BufReader::new(stream);
    fn reply(reader: &mut impl BufRead) -> String {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("a reply from redis-server");
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "$" if rest == "-1" => String::new(),
            "$" => {
                let len: usize = rest.parse().unwrap();
                let mut data = vec![0; len + 2];
                std::io::Read::read_exact(reader, &mut data).unwrap();
                String::from_utf8_lossy(&data[..len]).into_owned()
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                (0..n.max(0))
                    .map(|_| reply(reader))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            _ => rest.to_string(),
        }
    }
    let selected = reply(&mut reader);
    assert_eq!(selected, "OK", "SELECT {db}");
    reply(&mut reader)
}

/// A Redis Cluster of three masters (without replicas, or with one each), on loopback
/// ports: `redis-server --cluster-enabled yes`, each in a temporary directory of its own
/// (its `nodes.conf` and its snapshot), joined with `redis-cli --cluster create`. With
/// `cluster-require-full-coverage no`, as a hub's cluster should run: while one master is
/// down, the others go on serving their slots. No automatic snapshots; a master restarted
/// comes back empty, or from what its last `SAVE` wrote.
#[derive(Debug)]
pub struct RedisCluster {
    program: PathBuf,
    nodes: Vec<ClusterNode>,
}

#[derive(Debug)]
struct ClusterNode {
    dir: PathBuf,
    port: u16,
    bus: u16,
    process: Process,
}

impl RedisCluster {
    /// Start three masters (`server` is redis-server) and make them a cluster with
    /// `cli` (redis-cli); returns once every node serves every slot.
    pub fn start(server: &Path, cli: &Path) -> RedisCluster {
        Self::create(server, cli, 0)
    }

    /// [`RedisCluster::start`] with a replica of each master: nodes 0–2 are the masters,
    /// 3–5 their replicas.
    pub fn start_with_replicas(server: &Path, cli: &Path) -> RedisCluster {
        Self::create(server, cli, 1)
    }

    fn create(server: &Path, cli: &Path, replicas: usize) -> RedisCluster {
        let nodes: Vec<ClusterNode> = (0..3 * (1 + replicas))
            .map(|_| {
                let dir = temp_dir("redis-cluster");
                let (port, bus) = (free_port(), free_port());
                let process = Self::run(server, &dir, port, bus);
                ClusterNode {
                    dir,
                    port,
                    bus,
                    process,
                }
            })
            .collect();
        let cluster = RedisCluster {
            program: server.to_path_buf(),
            nodes,
        };
        let output = Command::new(cli)
            .args(["--cluster", "create"])
            .args(
                cluster
                    .nodes
                    .iter()
                    .map(|n| format!("127.0.0.1:{}", n.port)),
            )
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for i in 0..cluster.nodes.len() {
            cluster.until_ready(i);
        }
        // A replica that never synchronised with its master would not take over.
        for i in 3..cluster.nodes.len() {
            cluster.until_replicating(i);
        }
        cluster
    }

    /// Wait (up to 20 s) until node `i`, a replica, is in sync with its master.
    fn until_replicating(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = self.command(i, &["INFO", "replication"]);
            if info.contains("master_link_status:up") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} does not replicate after 20 s: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn run(program: &Path, dir: &Path, port: u16, bus: u16) -> Process {
        let process = Process::spawn(
            Command::new(program)
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--cluster-port", &bus.to_string()])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--cluster-require-full-coverage", "no"])
                // Replicas synchronise at once (not after the default 5 s wait for more).
                .args(["--repl-diskless-sync-delay", "0"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null()),
        );
        wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), "redis-server");
        process
    }

    /// Wait (up to 20 s) until node `i` knows every node and that every slot is served.
    fn until_ready(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = self.command(i, &["CLUSTER", "INFO"]);
            let known = format!("cluster_known_nodes:{}", self.nodes.len());
            if info.contains("cluster_state:ok")
                && info.contains("cluster_slots_ok:16384")
                && info.contains(&known)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster is not ready on node {i} after 20 s: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URLs of its nodes, separated by commas (how a hub is pointed at a cluster).
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `redis://127.0.0.1:PORT/` of master `i`.
    pub fn url(&self, i: usize) -> String {
        format!("redis://127.0.0.1:{}/", self.nodes[i].port)
    }

    /// The address of master `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[i].port))
    }

    /// [`Redis::command`] on master `i` (database 0, the only one of a cluster).
    pub fn command(&self, i: usize, args: &[&str]) -> String {
        redis_command(self.addr(i), 0, args)
    }

    /// The master that holds `key`'s slot (the others, replicas too, answer `MOVED`), among
    /// the nodes that run.
    pub fn owner(&self, key: &str) -> usize {
        self.try_owner(key)
            .unwrap_or_else(|| panic!("no node, or several, hold {key}"))
    }

    /// [`RedisCluster::owner`], or `None` while no node that runs holds it (its master is
    /// down and not replaced yet), or several claim it (a failover under way).
    pub fn try_owner(&self, key: &str) -> Option<usize> {
        let owners: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].process.0.is_some())
            .filter(|&i| {
                let reply = self.command(i, &["EXISTS", key]);
                !reply.starts_with("MOVED") && !reply.starts_with("CLUSTERDOWN")
            })
            .collect();
        match owners.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Kill master `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].process.kill();
    }

    /// Kill master `i` (SIGKILL) if it runs, and start it again on the same ports, from
    /// its `nodes.conf` (its id and slots) and its last `SAVE` if it made one; returns once
    /// it serves its slots again.
    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.process.kill();
        node.process = Self::run(&self.program, &node.dir, node.port, node.bus);
        self.until_ready(i);
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.process.kill();
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

/// `nginx` in front of some upstream servers, from `deploy/nginx.conf` with the test's
/// ports put in.
#[derive(Debug)]
pub struct Nginx {
    dir: PathBuf,
    port: u16,
    process: Process,
}

impl Nginx {
    /// Start `program` with the repository's `deploy/nginx.conf`, listening on a free port
    /// and balancing over `upstreams` (as many as the file has `server` lines).
    pub fn start(program: &Path, upstreams: &[SocketAddr]) -> Nginx {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf");
        let mut conf = std::fs::read_to_string(&template).unwrap();
        let port = free_port();
        conf = conf.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
        for (i, addr) in upstreams.iter().enumerate() {
            let placeholder = format!("127.0.0.1:{}", 9001 + i);
            assert!(
                conf.contains(&placeholder),
                "deploy/nginx.conf has no {placeholder}"
            );
            conf = conf.replace(&placeholder, &addr.to_string());
        }
        let dir = temp_dir("nginx");
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let process = Process::spawn(
            Command::new(program)
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&conf_path)
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), "nginx");
        Nginx { dir, port, process }
    }

    /// `ws://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.process.terminate();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
