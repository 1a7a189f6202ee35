#!/usr/bin/env node
// The compiled CLI lives in dist/; `npm install` builds it (the prepare script).
import '../dist/cli/bin.js';
