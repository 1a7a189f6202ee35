#!/usr/bin/env node
// The compiled CLI lives in dist/; `npm install` builds it (the prepare script).
import { main } from '../dist/cli/main.js';

await main(process.argv);
