import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { destroyTestVault, openTestVault, type TestVault } from '../helpers/test-vault.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const workflowDir = path.join(root, 'integrations/n8n');

interface WorkflowNode {
  id: string;
  name: string;
  type: string;
  typeVersion: number;
  position: [number, number];
  parameters: Record<string, any>;
  credentials?: Record<string, { id?: string; name: string }>;
}

interface Workflow {
  name: string;
  nodes: WorkflowNode[];
  connections: Record<string, { main: Array<Array<{ node: string; type: string; index: number }>> }>;
  settings: Record<string, unknown>;
}

/** The product request's three workflows, with the trigger's cron expression and the AEGIS calls each makes. */
const expected = [
  { file: 'aegis-health-monitor.json', name: 'AEGIS-Health-Monitor', cron: '0 * * * *', calls: ['POST /health/check-all', 'GET /health/expiring'] },
  { file: 'aegis-rotation-scheduler.json', name: 'AEGIS-Rotation-Scheduler', cron: '30 * * * *', calls: ['POST /rotation/run-scheduled'] },
  { file: 'aegis-daily-report.json', name: 'AEGIS-Daily-Report', cron: '0 8 * * *', calls: ['GET /health/dashboard'] },
];

/** Fields each workflow must read, so a change that stops reading them (and the check going vacuous) fails. */
const expectedReads: Record<string, string[]> = {
  'AEGIS-Health-Monitor': ['POST /health/check-all unhealthy', 'POST /health/check-all details[].status', 'GET /health/expiring count', 'GET /health/expiring credentials[].name'],
  'AEGIS-Rotation-Scheduler': ['POST /rotation/run-scheduled failed', 'POST /rotation/run-scheduled rotated', 'POST /rotation/run-scheduled details[].credential'],
  'AEGIS-Daily-Report': ['GET /health/dashboard summary.expired', 'GET /health/dashboard credentials[].status', 'GET /health/dashboard alerts[].message'],
};

const knownNodeTypes = new Set(['n8n-nodes-base.scheduleTrigger', 'n8n-nodes-base.httpRequest', 'n8n-nodes-base.if', 'n8n-nodes-base.code']);

function loadWorkflow(file: string): Workflow {
  return JSON.parse(fs.readFileSync(path.join(workflowDir, file), 'utf8')) as Workflow;
}

/** Returns `METHOD /path` when the node is an HTTP Request to AEGIS (its URL starts with $env.AEGIS_URL), else null. */
function aegisCall(node: WorkflowNode): string | null {
  if (node.type !== 'n8n-nodes-base.httpRequest') return null;
  const match = /^=\{\{ \$env\.AEGIS_URL \}\}(\/[^?]*)/.exec(String(node.parameters.url));
  return match ? `${node.parameters.method} ${match[1]}` : null;
}

/** Finds the AEGIS call whose response reaches `node` as its input, looking back through IF nodes, which pass items on unchanged. */
function inputCall(workflow: Workflow, node: WorkflowNode): string | null {
  for (const [source, outputs] of Object.entries(workflow.connections)) {
    if (!outputs.main.some((targets) => targets.some((target) => target.node === node.name))) continue;
    const sourceNode = workflow.nodes.find((candidate) => candidate.name === source)!;
    const call = aegisCall(sourceNode);
    if (call) return call;
    if (sourceNode.type === 'n8n-nodes-base.if') return inputCall(workflow, sourceNode);
  }
  return null;
}

function collectStrings(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (Array.isArray(value)) value.forEach((item) => collectStrings(item, into));
  else if (value && typeof value === 'object') Object.values(value).forEach((item) => collectStrings(item, into));
  return into;
}

const PATH = '((?:\\.[A-Za-z_]\\w*)*)';
const ROOT = '(?:\\$json|\\$input\\.first\\(\\)\\.json|\\$input\\.item\\.json)';
const ARRAY_METHOD = '(?:\\.slice\\([^)]*\\))?\\.(?:filter|map|some|every|find|forEach)\\(\\(?(\\w+)\\)? =>';

/** Cuts a dotted path before the first method call, e.g. `.details.filter` to `details`. */
function fieldPath(dotted: string, text: string, end: number): string[] {
  const segments = dotted.split('.').filter(Boolean);
  if (text[end] === '(') segments.pop();
  return segments;
}

/**
 * Lists the response fields an expression or Code node reads from its input item: `$json.a.b`,
 * `$input.first().json.a`, constants assigned from those, and fields of array items read in a
 * filter/map callback (`$json.details.filter(d => d.status ...)` reads `details[].status`).
 */
function readFields(text: string): string[] {
  const fields = new Set<string>();
  const bases: Array<{ pattern: string; prefix: string[] }> = [{ pattern: ROOT, prefix: [] }];
  for (const alias of text.matchAll(new RegExp(`const (\\w+) = ${ROOT}${PATH};`, 'g'))) {
    bases.push({ pattern: `\\b${alias[1]}`, prefix: alias[2]!.split('.').filter(Boolean) });
  }
  for (const base of bases) {
    for (const match of text.matchAll(new RegExp(`${base.pattern}${PATH}`, 'g'))) {
      const segments = [...base.prefix, ...fieldPath(match[1]!, text, match.index! + match[0].length)];
      if (segments.length > 0) fields.add(segments.join('.'));
    }
    for (const match of text.matchAll(new RegExp(`${base.pattern}${PATH}${ARRAY_METHOD}`, 'g'))) {
      const arrayPath = [...base.prefix, ...match[1]!.split('.').filter(Boolean)].join('.');
      for (const item of text.matchAll(new RegExp(`\\b${match[2]}\\.([A-Za-z_]\\w*)`, 'g'))) fields.add(`${arrayPath}[].${item[1]}`);
    }
  }
  return [...fields];
}

/** Follows a field path through a JSON schema; returns why it fails, or null when every field exists. */
function missingField(schema: any, field: string): string | null {
  let current = schema;
  for (const segment of field.replace(/\[\]/g, '.[]').split('.')) {
    if (segment === '[]') {
      if (!current?.items) return `${field}: not an array`;
      current = current.items;
    } else if (segment === 'length' && (current?.type === 'array' || current?.items)) {
      return null;
    } else {
      if (!current?.properties?.[segment]) return `${field}: no field "${segment}"`;
      current = current.properties[segment];
    }
  }
  return null;
}

/** Checks every AEGIS field a workflow reads against the OpenAPI response schemas; returns one line per problem. */
function checkReads(workflow: Workflow, openapi: any): { problems: string[]; reads: string[] } {
  const problems: string[] = [];
  const reads: string[] = [];
  for (const node of workflow.nodes) {
    const call = inputCall(workflow, node);
    if (!call) continue;
    const [method, route] = call.split(' ') as [string, string];
    const operation = openapi.paths?.[route]?.[method.toLowerCase()];
    if (!operation) {
      problems.push(`${workflow.name}: node "${node.name}" reads the response of ${call}, but the OpenAPI document has no route ${call}`);
      continue;
    }
    const schema = operation.responses?.['200']?.content?.['application/json']?.schema;
    for (const field of collectStrings(node.parameters).flatMap(readFields)) {
      reads.push(`${call} ${field}`);
      const missing = missingField(schema, field);
      if (missing) problems.push(`${workflow.name}: node "${node.name}" reads ${missing} in the 200 response of ${call}`);
    }
  }
  return { problems, reads };
}

describe('n8n workflows', () => {
  let test: TestVault;
  let openapi: any;

  before(async () => {
    test = await openTestVault('sqlite');
    openapi = test.app.swagger();
  });

  after(async () => {
    await destroyTestVault(test);
  });

  for (const { file, name, cron, calls } of expected) {
    it(`${name} has a valid structure`, () => {
      const workflow = loadWorkflow(file);
      assert.equal(workflow.name, name);
      assert.equal(workflow.settings.executionOrder, 'v1');

      const names = workflow.nodes.map((node) => node.name);
      assert.equal(new Set(names).size, names.length, `node names repeat: ${names.join(', ')}`);
      const ids = workflow.nodes.map((node) => node.id);
      assert.equal(new Set(ids).size, ids.length, 'node ids repeat');
      for (const node of workflow.nodes) {
        assert.ok(knownNodeTypes.has(node.type), `${node.name}: unexpected type ${node.type}`);
        assert.equal(typeof node.typeVersion, 'number', `${node.name}: typeVersion`);
        assert.equal(node.position.length, 2, `${node.name}: position`);
        assert.equal(typeof node.parameters, 'object', `${node.name}: parameters`);
      }

      for (const [source, outputs] of Object.entries(workflow.connections)) {
        assert.ok(names.includes(source), `connection from a missing node "${source}"`);
        for (const target of outputs.main.flat()) {
          assert.ok(names.includes(target.node), `connection from "${source}" to a missing node "${target.node}"`);
          assert.equal(target.type, 'main');
        }
      }
      // Every node but the trigger is reached by a connection.
      const reached = new Set(Object.values(workflow.connections).flatMap((outputs) => outputs.main.flat().map((target) => target.node)));
      for (const node of workflow.nodes) {
        if (node.type !== 'n8n-nodes-base.scheduleTrigger') assert.ok(reached.has(node.name), `node "${node.name}" is not connected`);
      }

      const triggers = workflow.nodes.filter((node) => node.type === 'n8n-nodes-base.scheduleTrigger');
      assert.equal(triggers.length, 1);
      assert.deepEqual(triggers[0]!.parameters.rule.interval, [{ field: 'cronExpression', expression: cron }]);

      assert.deepEqual(workflow.nodes.map(aegisCall).filter(Boolean), calls);
    });

    it(`${name} authenticates by credential`, () => {
      const workflow = loadWorkflow(file);
      const text = fs.readFileSync(path.join(workflowDir, file), 'utf8');
      assert.doesNotMatch(text, /aegis_[0-9a-f]{12}_/, 'a literal AEGIS token');
      assert.doesNotMatch(text, /Bearer /, 'a literal Authorization header');
      for (const node of workflow.nodes.filter((candidate) => aegisCall(candidate) !== null)) {
        assert.equal(node.parameters.authentication, 'genericCredentialType', node.name);
        assert.equal(node.parameters.genericAuthType, 'httpHeaderAuth', node.name);
        assert.deepEqual(node.credentials, { httpHeaderAuth: { name: 'AEGIS API token' } }, node.name);
      }
      for (const node of workflow.nodes.filter((candidate) => candidate.type === 'n8n-nodes-base.httpRequest' && aegisCall(candidate) === null)) {
        assert.match(String(node.parameters.url), /^=\{\{ \$env\.(HERMES_URL|EVENT_BUS_URL) \}\}\/(notify|events)$/, node.name);
        assert.equal(node.credentials, undefined, `${node.name} sends no AEGIS token`);
      }
    });

    it(`${name} reads documented fields`, () => {
      const workflow = loadWorkflow(file);
      const { problems, reads } = checkReads(workflow, openapi);
      assert.deepEqual(problems, []);
      for (const read of expectedReads[name]!) assert.ok(reads.includes(read), `expected the workflow to read ${read}; it reads ${reads.join(', ')}`);
    });
  }

  it('field check rejects unknown fields', () => {
    const workflow = loadWorkflow('aegis-health-monitor.json');
    const changed = JSON.parse(JSON.stringify(workflow).replace('$json.unhealthy }}', '$json.unhealty }}')) as Workflow;
    const { problems } = checkReads(changed, openapi);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, /no field "unhealty".*POST \/health\/check-all/);
  });

  it('field check names missing routes', () => {
    const workflow = loadWorkflow('aegis-daily-report.json');
    const withoutRoute = { ...openapi, paths: { ...openapi.paths } };
    delete withoutRoute.paths['/health/dashboard'];
    const { problems } = checkReads(workflow, withoutRoute);
    assert.ok(problems.length > 0);
    assert.match(problems[0]!, /no route GET \/health\/dashboard/);
  });

  it('reads array item fields', () => {
    assert.deepEqual(readFields('={{ $json.details.filter(d => d.status === 1).length }}').sort(), ['details', 'details[].status']);
    assert.deepEqual(readFields('const s = $input.first().json.summary;\nconst t = s.total;').sort(), ['summary', 'summary.total']);
  });
});
