import type { Command } from 'commander';
import { SCOPES } from '../../tokens/scopes.js';
import { tokenView } from '../../tokens/tokens.routes.js';
import { cliCaller, collect, printJson, printTable, withVault } from '../context.js';
import { rethrowWithOptionName } from '../input-check.js';

/** The option of `aegis tokens create` for each request field, so an error names what the user typed. */
const createOptionNames: Record<string, string> = {
  actor: '--actor',
  scopes: '--scope',
  name_patterns: '--name-pattern',
  tags: '--tag',
  description: '--description',
  expires_at: '--expires-at',
};

export function registerTokenCommands(program: Command): void {
  const tokens = program.command('tokens').description('Create, list and revoke API tokens');

  tokens
    .command('create')
    .description('Create a token and print it once (only its hash is stored)')
    .requiredOption('--actor <name>', 'who uses it, recorded in every audit entry (e.g. ARIA, HEPHAESTUS, alice)')
    .requiredOption('--scope <scope>', `a scope; repeat for several: ${SCOPES.join(', ')}`, collect)
    .option('--name-pattern <glob>', 'limit to credential names matching this glob (* matches anything); repeatable', collect)
    .option('--tag <tag>', 'limit to credentials with this tag; repeatable', collect)
    .option('--description <text>', 'what the token is for')
    .option('--expires-at <date-time>', 'when the token stops working, ISO-8601')
    .option('--json', 'print JSON')
    .action(
      async (options: { actor: string; scope: string[]; namePattern?: string[]; tag?: string[]; description?: string; expiresAt?: string; json?: boolean }) => {
        await withVault(async (vault) => {
          const { token, view } = await vault.tokens
            .create(cliCaller(), {
              actor: options.actor,
              scopes: options.scope,
              namePatterns: options.namePattern ?? [],
              tags: options.tag ?? [],
              description: options.description ?? null,
              expiresAt: options.expiresAt ?? null,
            })
            .catch((error: unknown) => rethrowWithOptionName(createOptionNames, error));
          if (options.json) return printJson({ token, details: tokenView(view) });
          process.stdout.write(`token ${view.id} for ${view.actor} (${view.scopes.join(', ')}); shown once:\n${token}\n`);
        });
      },
    );

  tokens
    .command('list')
    .description('List tokens (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const { tokens: list } = await vault.tokens.list(cliCaller());
        if (options.json) return printJson({ tokens: list.map(tokenView) });
        printTable(
          ['ID', 'ACTOR', 'SCOPES', 'LIMITS', 'CREATED', 'LAST USED', 'STATE'],
          list.map((token) => [
            token.id,
            token.actor,
            token.scopes.join(','),
            [...token.namePatterns, ...token.tags.map((tag) => `tag:${tag}`)].join(',') || 'none',
            token.createdAt,
            token.lastUsedAt,
            token.revokedAt ? 'revoked' : token.expiresAt && new Date(token.expiresAt) <= vault.clock.now() ? 'expired' : 'active',
          ]),
        );
      });
    });

  tokens
    .command('revoke <id>')
    .description('Revoke a token by its id (the 12 hex characters after aegis_)')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      await withVault(async (vault) => {
        const token = await vault.tokens.revoke(cliCaller(), id).catch((error: unknown) => rethrowWithOptionName({ id: 'ID' }, error));
        if (options.json) return printJson(tokenView(token));
        process.stdout.write(`revoked token ${token.id} of ${token.actor}\n`);
      });
    });
}
