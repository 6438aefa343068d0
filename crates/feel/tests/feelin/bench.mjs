// Times feelin on the cases of a JSON file ({ "cases": [{ "expression", "scope" }], "rounds",
// "samples" }): each sample evaluates every case `rounds` times (feelin parses each time);
// prints the median microseconds per evaluation.
import { readFileSync } from 'node:fs';
import { evaluate } from 'feelin';

const { cases, rounds, samples } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const bpmnError = (errorCode, errorMessage) => ({ errorType: 'bpmnError', errorCode, errorMessage });
const jobError = (errorMessage, variables, retries, retryBackoff) =>
  ({ errorType: 'jobError', errorMessage, variables, retries, retryBackoff });
const prepared = cases.map(({ expression, scope }) =>
  ({ expression: expression.replace(/^\s*=/, ''), scope: { bpmnError, jobError, ...scope } }));

let sink = 0;
const run = () => {
  for (let r = 0; r < rounds; r++) {
    for (const { expression, scope } of prepared) {
      const { value } = evaluate(expression, scope);
      if (value !== undefined) sink++;
    }
  }
};
run(); // warm up the JIT
const times = [];
for (let s = 0; s < samples; s++) {
  const started = process.hrtime.bigint();
  run();
  times.push(Number(process.hrtime.bigint() - started) / 1000 / (rounds * prepared.length));
}
times.sort((a, b) => a - b);
process.stdout.write(JSON.stringify({ microseconds: times[Math.floor(times.length / 2)], sink }));
