// Writes generated/schema.d.ts from the committed contract, the way front-end teams are told to in README:
// openapi-typescript with `format: binary` mapped to Blob, so an upload takes a file from the browser.
import fs from "node:fs";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const BLOB = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));
const NULL = ts.factory.createLiteralTypeNode(ts.factory.createNull());

const contract = new URL(process.argv[2] ?? "../../openapi/openapi.json", import.meta.url);
const ast = await openapiTS(contract, {
  transform(schemaObject, metadata) {
    if (schemaObject.format === "binary") {
      return schemaObject.nullable ? ts.factory.createUnionTypeNode([BLOB, NULL]) : BLOB;
    }
  },
});
fs.mkdirSync(new URL("generated/", import.meta.url), { recursive: true });
fs.writeFileSync(new URL("generated/schema.d.ts", import.meta.url), astToString(ast));
