// Compiles every contracts/*.sol with the pinned solc-js into contracts/build/<Name>.json
// ({abi, bytecode, solcVersion, sourceHash}). The outputs are build products, never edited by
// hand; a build whose sources have not changed is skipped.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = dirname(fileURLToPath(import.meta.url));
const buildDir = join(here, "build");
const stampFile = join(buildDir, ".sources.sha256");

const sources = {};
for (const name of readdirSync(here).filter((file) => file.endsWith(".sol")).sort()) {
  sources[name] = { content: readFileSync(join(here, name), "utf8") };
}
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  viaIR: false,
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};
const sourceHash = createHash("sha256")
  .update(JSON.stringify({ sources, settings, version: solc.version() }))
  .digest("hex");

if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === sourceHash) {
  console.log(`contracts: up to date (${Object.keys(sources).length} sources, solc ${solc.version()})`);
  process.exit(0);
}

const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings })));
const errors = (output.errors || []).filter((item) => item.severity === "error");
for (const item of output.errors || []) {
  console.error(item.formattedMessage);
}
if (errors.length) {
  process.exit(1);
}

mkdirSync(buildDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, artifact] of Object.entries(contracts)) {
    if (!artifact.evm.bytecode.object) continue; // interfaces and abstract contracts
    writeFileSync(
      join(buildDir, `${name}.json`),
      JSON.stringify(
        {
          contractName: name,
          sourceFile: file,
          abi: artifact.abi,
          bytecode: "0x" + artifact.evm.bytecode.object,
          deployedBytecode: "0x" + artifact.evm.deployedBytecode.object,
          solcVersion: solc.version(),
          sourceHash,
        },
        null,
        2,
      ),
    );
    console.log(`contracts: built ${name} from ${file}`);
  }
}
writeFileSync(stampFile, sourceHash);
