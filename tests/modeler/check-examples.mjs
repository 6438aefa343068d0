// Checks the example processes without a browser: each parses with bpmn-moddle and the Zeebe
// extension with no warning, passes bpmnlint with Camunda's compatibility rules for every
// Camunda version the templates' `engines` range covers, and uses only job types the worker
// serves (JOB_TYPES, comma-separated, from `email-connector job-types`).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { BpmnModdle } from 'bpmn-moddle';
import bpmnlint from 'bpmnlint';
import NodeResolver from 'bpmnlint/lib/resolver/node-resolver.js';
import { root } from './harness.mjs';

const require = createRequire(import.meta.url);
const zeebe = require('zeebe-bpmn-moddle/resources/zeebe.json');
const plugin = require('bpmnlint-plugin-camunda-compat');

const served = new Set((process.env.JOB_TYPES ?? '').split(',').filter(Boolean));
if (served.size === 0) {
  console.error('JOB_TYPES is empty: pass the worker\'s job types');
  process.exit(1);
}

// The lowest Camunda version of the templates' engines range, such as ^8.8 → 8.8.
const templates = readdirSync(join(root, 'element-templates')).filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(root, 'element-templates', f), 'utf8')));
const ranges = new Set(templates.map((t) => t.engines?.camunda));
if (ranges.size !== 1) {
  console.error(`the templates disagree on engines.camunda: ${[...ranges].join(', ')}`);
  process.exit(1);
}
const [range] = ranges;
const [, major, minor] = /^\^(\d+)\.(\d+)/.exec(range) ?? [];
const configs = Object.keys(plugin.configs)
  .map((name) => [name, /^camunda-cloud-(\d+)-(\d+)$/.exec(name)])
  .filter(([, m]) => m && Number(m[1]) === Number(major) && Number(m[2]) >= Number(minor))
  .map(([name, m]) => ({ name, minor: Number(m[2]) }));
if (configs.length === 0) {
  console.error(`no camunda-compat rule set for ${range}`);
  process.exit(1);
}

function* flowElements(container) {
  for (const element of container.flowElements ?? []) {
    yield element;
    yield* flowElements(element);
  }
}

const moddle = new BpmnModdle({ zeebe });
const dir = join(root, 'examples');
const files = readdirSync(dir).filter((f) => f.endsWith('.bpmn')).sort();
let problems = 0;
const fail = (message) => {
  console.error(message);
  problems += 1;
};
if (files.length < 2) fail(`expected at least two examples in ${dir}`);

for (const file of files) {
  const { rootElement, warnings } = await moddle.fromXML(readFileSync(join(dir, file), 'utf8'));
  for (const w of warnings) fail(`${file}: parse warning: ${w.message}`);

  const types = [];
  for (const process of rootElement.rootElements.filter((e) => e.$type === 'bpmn:Process')) {
    for (const element of flowElements(process)) {
      if (element.$type !== 'bpmn:ServiceTask') continue;
      const definition = (element.extensionElements?.values ?? [])
        .find((v) => v.$type === 'zeebe:TaskDefinition');
      if (!definition?.type) fail(`${file}: ${element.id} has no job type`);
      else types.push(definition.type);
    }
  }
  if (types.length === 0) fail(`${file}: no service task`);
  for (const type of types) {
    if (!served.has(type)) fail(`${file}: job type ${type} is not served by the worker`);
  }

  for (const { name: config, minor: configMinor } of configs) {
    // From 8.10 the rule asks to move `{{secrets.NAME}}` to the engine's `camunda.secrets.NAME`.
    // That would make Zeebe resolve the secret and hand its value to the job (and show it
    // among the task's variables); this worker resolves `{{secrets.NAME}}` itself, so the
    // secret never enters Zeebe. The examples keep the worker's format on purpose.
    const rules = configMinor >= 10 ? { 'camunda-compat/secrets': 'off' } : {};
    const linter = new bpmnlint.Linter({
      config: { extends: `plugin:camunda-compat/${config}`, rules },
      resolver: new NodeResolver(),
    });
    const reports = await linter.lint(rootElement);
    for (const [rule, entries] of Object.entries(reports)) {
      for (const entry of entries) {
        fail(`${file}: ${config} ${entry.category} ${rule} at ${entry.id}: ${entry.message}`);
      }
    }
  }
  console.log(`${file}: parsed, ${types.length} service tasks (${[...new Set(types)].join(', ')}), linted for ${configs.map((c) => c.name).join(', ')}`);
}
process.exit(problems === 0 ? 0 : 1);
