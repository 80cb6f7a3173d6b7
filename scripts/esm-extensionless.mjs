// `node --import ./scripts/esm-extensionless.mjs dist/...`: the compiled sources import each other
// as `'../config'` (TypeScript bundler-style resolution); Node's ESM loader wants `../config.js` or
// `../config/index.js`. This resolve hook tries those for relative specifiers only.
import { register } from 'node:module';

const hook = `
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (!['ERR_MODULE_NOT_FOUND', 'ERR_UNSUPPORTED_DIR_IMPORT'].includes(err?.code) || !/^\\.{1,2}\\//.test(specifier)) throw err;
    try {
      return await next(specifier + '.js', context);
    } catch {
      return next(specifier + '/index.js', context);
    }
  }
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
