// Validates the prometheus-operator resources (ServiceMonitor, PrometheusRule) of rendered manifests
// against the operator's CRD schemas, which kubernetes-validate does not carry.
//   node scripts/validate-monitoring.mjs TOOLS_DIR < manifests.json   (a JSON array of documents)
// Exits 1 naming each invalid resource; 2 when a monitoring.coreos.com kind is not known here.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const tools = process.argv[2];
const models = await import(
  pathToFileURL(`${tools}/node/node_modules/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js`).href
);
const docs = JSON.parse(readFileSync(0, "utf8")).filter((doc) => doc && doc.apiVersion === "monitoring.coreos.com/v1");
let failed = 0;
for (const doc of docs) {
  const Model = models[doc.kind];
  const where = `${doc.kind}/${doc.metadata?.name}`;
  if (!Model) {
    console.error(`validate-monitoring: no schema for ${where}`);
    process.exit(2);
  }
  try {
    new Model(doc).validate();
    console.log(`validate-monitoring: ${where} is valid`);
  } catch (error) {
    failed += 1;
    console.error(`validate-monitoring: ${where} is invalid: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
