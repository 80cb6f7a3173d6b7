// The failure converter of an encrypting data converter (see workers/data-converter.ts): failure
// messages and stack traces move into an encoded payload, which the payload codec then encrypts,
// so activity and workflow error texts are not stored in Temporal in clear.
// CommonJS on purpose: the SDK loads it by path, with require() in workers and clients and
// through webpack into the workflow bundle (bundleWorkflowCode's failureConverterPath).
'use strict';
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
