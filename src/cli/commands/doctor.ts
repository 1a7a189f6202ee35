import type { Command } from 'commander';

/** Registers `aegis doctor`, which checks a deployment and prints what to fix. */
export function registerDoctorCommand(_program: Command): void {}
