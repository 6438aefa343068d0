// Runs Camunda's own element-template validator over every generated template and fails on
// any error or warning (a deprecation is a warning: it would break on a newer Modeler).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateZeebe } from '@bpmn-io/element-templates-validator';

const dir = process.argv[2] ?? '../../element-templates';
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
if (files.length === 0) {
  console.error(`no templates in ${dir}`);
  process.exit(1);
}
let problems = 0;
for (const file of files) {
  const template = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const result = validateZeebe(template);
  const valid = result.valid;
  const errors = result.errors ?? [];
  const warnings = result.warnings ?? [];
  for (const e of errors) {
    console.error(`${file}: error at ${e.instancePath || '/'}: ${e.message}`);
  }
  for (const w of warnings ?? []) {
    console.error(`${file}: warning at ${w.instancePath || w.dataPath || '/'}: ${w.message}`);
  }
  problems += errors.length + (warnings ?? []).length + (valid ? 0 : 1);
  console.log(`${file}: ${valid ? 'valid' : 'INVALID'}, ${errors.length} errors, ${(warnings ?? []).length} warnings`);
}
process.exit(problems === 0 ? 0 : 1);
