// Evaluates each case of a JSON file ([{ "expression", "scope" }, ...]) with feelin and prints
// one JSON array: { "value" } per case (temporal values as their ISO text, functions as
// "function"), or { "error" }.
// The connector functions are given to feelin as Camunda's runtime builds their results.
import { readFileSync } from 'node:fs';
import { evaluate } from 'feelin';

const connector = {
  bpmnError: (errorCode, errorMessage, variables) => {
    const out = { errorType: 'bpmnError', errorCode };
    if (errorMessage !== undefined) out.errorMessage = errorMessage;
    if (variables !== undefined) out.variables = variables;
    return out;
  },
  jobError: (errorMessage, variables, retries, retryBackoff) => ({
    errorType: 'jobError',
    errorMessage,
    variables: variables ?? {},
    retries: retries ?? 0,
    retryBackoff: retryBackoff ?? 'P0D',
  }),
  ignoreError: (variables) => (variables === undefined
    ? { errorType: 'ignoreError' }
    : { errorType: 'ignoreError', variables }),
};

function plain(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'function') return 'function';
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object') {
    // feelin's temporal values carry their ISO text.
    if (typeof value.iso === 'string') return value.iso;
    if (Array.isArray(value.parameterNames)) return 'function';
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}

const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = cases.map(({ expression, scope }) => {
  try {
    const { value } = evaluate(expression.replace(/^\s*=/, ''), { ...connector, ...scope });
    return { value: plain(value) };
  } catch (e) {
    return { error: String(e.message || e) };
  }
});
process.stdout.write(JSON.stringify(results));
