#!/usr/bin/env node
// The saekit CLI. `npm ci` builds dist/ (TypeScript) and the native addon.
import { main } from "../dist/cli/main.js";

await main(process.argv);
