/**
 * Malformed desired states, each with the words its first error must contain. `content` may
 * use the fixture (its stack name, its images) to be otherwise valid. Every case runs in-process
 * through the loader (test/unit/bad-input.test.ts); those marked `agent` are also fed to a running
 * `agent run` (test/integration/bad-input.test.ts), for what the agent adds: refused while it
 * runs, nothing touched, the agent still up.
 */

/** What a case may use of the test fixture. */
export interface BadInputFixture {
  stack: string;
  image(version: string): string;
}

export interface BadInput {
  name: string;
  content: string | ((f: BadInputFixture) => string);
  /** Words the first error's message contains. */
  expect: string;
  line?: number;
  file?: string;
  /** Also fed to a running agent: one case of each kind of mistake. */
  agent?: true;
}

const D = `sha256:${'a'.repeat(64)}`;
/** A valid service around one broken part. */
const svc = (extra: string, image?: string, network = 'host') => (f: BadInputFixture) => `name: ${f.stack}\nservices:\n  web:\n    image: ${image ?? f.image('1.0.0')}\n    network_mode: ${network}\n${extra}`;
const two = (a: string, b: string) => (f: BadInputFixture) => `name: ${f.stack}\nservices:\n  a:\n    image: ${f.image('1.0.0')}\n${a}  b:\n    image: ${f.image('1.0.0')}\n${b}`;

export const BAD_INPUTS: BadInput[] = [
  // YAML syntax
  { name: 'unclosed flow sequence', content: 'services:\n  web: [\n', expect: 'flow sequence' },
  { name: 'tab indentation', content: 'services:\n\tweb: {}\n', expect: 'tab' },
  { name: 'unclosed quote', agent: true, content: 'services:\n  web:\n    image: "abc\n', expect: 'quote' },
  { name: 'bad indentation', content: 'services:\n  web:\n    image: x\n   command: y\n', expect: 'all mapping items must start at the same column' },
  { name: 'duplicate key', agent: true, content: svc('    image: other:1\n'), expect: 'unique' },
  { name: 'a document that is a list', content: '- a\n- b\n', expect: 'must be a map' },
  { name: 'a scalar document', content: 'hello\n', expect: 'must be a map' },
  { name: 'empty file', content: '', expect: 'empty' },
  { name: 'only a comment', content: '# nothing here\n', expect: 'empty' },
  { name: 'two documents in one file', content: 'services: {}\n---\nservices: {}\n', expect: 'document' },
  // Schema
  { name: 'no services key', content: 'name: x\n', expect: 'missing required key "services"' },
  { name: 'services is a list', content: 'services: [web]\n', expect: 'must be a map' },
  { name: 'unknown top-level key', content: (f) => `name: ${f.stack}\nservies: {}\nservices: {}\n`, expect: 'unknown key "servies"' },
  { name: 'unknown Compose key', agent: true, content: svc('    buidl: .\n'), expect: 'unknown key "buidl"' },
  { name: 'undeclared network', content: (f) => `name: ${f.stack}\nservices:\n  web:\n    image: ${f.image('1.0.0')}\n    networks: [front]\n`, expect: 'network "front" is not declared', line: 5 },
  { name: 'networks beside network_mode', content: svc('    networks: [default]\n'), expect: 'cannot be combined with `network_mode`' },
  { name: 'a fixed address without a subnet', content: (f) => `name: ${f.stack}\nservices:\n  web:\n    image: ${f.image('1.0.0')}\n    networks:\n      back: {ipv4_address: 169.254.10.5}\nnetworks:\n  back: {}\n`, expect: 'needs a subnet' },
  { name: 'misspelt key', content: svc('    enviroment: {A: 1}\n'), expect: 'unknown key "enviroment"' },
  { name: 'image missing', agent: true, content: (f) => `name: ${f.stack}\nservices:\n  web:\n    network_mode: host\n`, expect: 'missing required key "image"' },
  { name: 'image is a number', content: svc('', '42'), expect: 'must be a string, not the number 42' },
  { name: 'init is a string', content: svc('    init: "yes"\n'), expect: 'true or false' },
  { name: 'unknown restart policy', content: svc('    restart: sometimes\n'), expect: 'must be' },
  { name: 'unknown network_mode', content: svc('', undefined, 'overlay'), expect: '"overlay" is not valid here: expected host, bridge, none, service:<name> or container:<name>' },
  { name: 'network_mode given twice', content: svc('    network_mode: none\n'), expect: 'unique' },
  { name: 'policy not auto or manual', content: svc('    x-agent: {policy: yolo}\n'), expect: 'must be one of "auto", "manual"' },
  { name: 'probe with no kind', content: svc('    x-agent:\n      health:\n        probes: [{interval: 1s}]\n'), expect: 'exactly one of http, tcp or exec' },
  { name: 'probe with a non-http URL', content: svc('    x-agent:\n      health:\n        probes: [{http: "ftp://x"}]\n'), expect: 'url' },
  { name: 'negative retries', content: svc('    x-agent:\n      health:\n        probes: [{tcp: "127.0.0.1:1", retries: -1}]\n'), expect: '>= 1' },
  { name: 'absurd retries', content: svc('    x-agent:\n      health:\n        probes: [{tcp: "127.0.0.1:1", retries: 100000}]\n'), expect: '<= 100' },
  { name: 'duration that is not one', content: svc('    stop_grace_period: forever\n'), expect: 'duration' },
  { name: 'port out of range', content: svc('    ports: [70000]\n', undefined, 'bridge'), expect: 'must be a string like' },
  { name: 'port mapping that is not one', content: svc('    ports: ["80:http"]\n', undefined, 'bridge'), expect: 'is not a port mapping' },
  { name: 'invalid service name', content: (f) => `name: ${f.stack}\nservices:\n  "web app":\n    image: ${f.image('1.0.0')}\n`, expect: 'invalid name' },
  { name: 'invalid stack name', content: (f) => `name: "My Stack!"\nservices:\n  web:\n    image: ${f.image('1.0.0')}\n`, expect: 'not valid here' },
  // Images
  { name: 'image with spaces', content: svc('', 'nginx latest'), expect: 'not a valid image reference' },
  { name: 'image with uppercase repository', content: svc('', 'Library/Nginx:1.0'), expect: 'not a valid image reference' },
  { name: 'image with a short digest', content: svc('', 'nginx:1.0@sha256:abc'), expect: 'not a valid image reference' },
  { name: 'image with two tags', content: svc('', 'nginx:1.0:2.0'), expect: 'not a valid image reference' },
  // Cross-service
  { name: 'unknown dependency', content: svc('    depends_on: [db]\n'), expect: 'unknown service "db"' },
  { name: 'dependency on itself', content: svc('    depends_on: [web]\n'), expect: 'depends on itself' },
  { name: 'dependency cycle', agent: true, content: two('    depends_on: [b]\n', '    depends_on: [a]\n'), expect: 'dependency cycle' },
  { name: 'duplicate host port', content: two('    ports: ["127.0.0.1:18555:80"]\n', '    ports: ["127.0.0.1:18555:81"]\n'), expect: 'already published' },
  { name: 'same service in two files', agent: true, file: 'zz-other.yaml', content: (f) => `name: ${f.stack}\nservices:\n  web:\n    image: ${f.image('1.1.0')}\n`, expect: 'already defined in stack.yaml' },
  { name: 'stack names that disagree', file: 'zz-other.yaml', content: () => 'name: another-stack\nservices: {}\n', expect: 'differs from' },
  // Paths
  { name: 'relative bind leaving the directory', content: svc('    volumes: ["../data:/data"]\n'), expect: 'leaves the desired-state directory' },
  { name: 'bind mount escaping with ..', content: svc('    volumes: ["/srv/../etc:/etc/app"]\n'), expect: 'must not contain ".."' },
  { name: 'container path escaping with ..', content: svc('    volumes: ["/srv/data:/data/../../etc"]\n'), expect: 'must not contain ".."' },
  { name: 'bind mount without a source', content: svc('    volumes: [{type: bind, target: /data}]\n'), expect: 'a bind mount needs a source' },
  { name: 'undeclared named volume', agent: true, content: svc('    volumes: ["data:/data"]\n'), expect: 'not declared' },
  { name: 'backup path with ..', content: svc('    x-agent:\n      backup: {paths: ["/data/../../etc/shadow"]}\n'), expect: 'must not contain ".."' },
  { name: 'backup of a volume the service does not mount', content: (f) => `${svc('    x-agent:\n      backup: {volumes: [data]}\n')(f)}volumes:\n  data: {}\n`, expect: 'not mounted by service' },
  { name: 'certbot volume with ..', content: (f) => `${svc('')(f)}x-agent:\n  jobs:\n    renew: {schedule: "0 3 * * 1", certbot: {image: ${f.image('1.0.0')}, volumes: ["/etc/../root:/x"]}}\n`, expect: 'no ".."' },
  // Jobs and windows
  { name: 'invalid cron expression', agent: true, content: (f) => `${svc('')(f)}x-agent:\n  jobs:\n    nightly: {schedule: "61 25 * * *", backup: {}}\n`, expect: 'invalid cron expression' },
  { name: 'unknown time zone', content: (f) => `${svc('')(f)}x-agent:\n  jobs:\n    nightly: {schedule: "0 2 * * *", timezone: Mars/Olympus, backup: {}}\n`, expect: 'unknown time zone' },
  { name: 'maintenance window without duration', content: svc('    x-agent:\n      window: {schedule: "0 22 * * *"}\n'), expect: 'missing required key "duration"' },
  // Variables and size
  { name: 'unset variable', agent: true, content: svc('    environment: {PASSWORD: "${NOT_SET_ANYWHERE}"}\n'), expect: 'variable NOT_SET_ANYWHERE is not set' },
  { name: 'unterminated variable', content: svc('    environment: {A: "${B"}\n'), expect: 'unterminated' },
  { name: 'alias bomb', agent: true, content: `x-a: &a [1,1,1,1,1,1,1,1,1,1]\nx-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nx-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nx-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\nx-e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nservices: {}\n`, expect: 'alias' },
  { name: 'a 10 MB file', agent: true, content: () => `services: {}\nx-padding: "${'x'.repeat(10 * 1024 * 1024)}"\n`, expect: 'the limit is 1.0 MiB', line: 1 },
  { name: 'reserved label', content: svc('    labels: {io.gitops-agent.stack: evil}\n'), expect: 'reserved' },
  { name: 'digest that is not hex', content: svc('', `nginx:1.0@sha256:${'z'.repeat(64)}`), expect: 'not a valid image reference' },
  { name: 'valid digest on a bad name', content: svc('', `-bad/name:1@${D}`), expect: 'not a valid image reference' },
  { name: 'SELinux relabel flag', content: svc('    volumes: ["/srv/data:/data:z"]\n'), expect: 'not supported: the :z flag' },
  { name: 'create_host_path', content: svc('    volumes: [{type: bind, source: /srv/data, target: /data, bind: {create_host_path: true}}]\n'), expect: 'not supported: create_host_path' },
  { name: 'ingress port mode', content: svc('    ports: [{target: 80, published: 8080, mode: ingress}]\n'), expect: 'not supported: mode: ingress' },
  { name: 'healthcheck start_interval', content: svc('    healthcheck: {test: ["CMD", "true"], start_interval: 1s}\n'), expect: 'not supported: start_interval' },
  { name: 'digest that is not sha256', agent: true, content: svc('', `reg.example:5000/web:1.0@md5:${'0'.repeat(32)}`), expect: 'digest algorithm "md5"' },
  { name: 'unclosed quote far from the end', content: (f) => `name: ${f.stack}\nservices:\n  web:\n    image: "${f.image('1.0.0')}\n    network_mode: host\n    restart: always\n`, expect: 'missing closing quote', line: 4 },
];
