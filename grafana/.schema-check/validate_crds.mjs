// Validate Prometheus Operator custom resources (ServiceMonitor, PrometheusRule, ...) against
// their CRD schemas from @kubernetes-models/prometheus-operator.
// Input on stdin: a JSON array of manifests. Output: one line per manifest; exit 1 on any
// invalid or unknown manifest.
import { readFileSync } from 'node:fs';

const docs = JSON.parse(readFileSync(0, 'utf8'));
let failed = 0;
for (const doc of docs) {
  const [group, version] = String(doc.apiVersion || '').split('/');
  const where = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
  let Model;
  try {
    Model = (await import(`@kubernetes-models/prometheus-operator/${group}/${version}/${doc.kind}`))[doc.kind];
  } catch (e) {
    console.log(`FAIL ${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
    failed += 1;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`ok ${where}`);
  } catch (e) {
    console.log(`FAIL ${where}: ${e.message}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
