import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { routeOf } from '../../web/src/routes.js';

describe('dashboard routes', () => {
  it('decodes a credential name', () => {
    assert.deepEqual(routeOf('#/credential/svc%2Fhealthy'), { page: 'credential', name: 'svc/healthy' });
  });

  it('marks a malformed escape invalid', () => {
    assert.deepEqual(routeOf('#/credential/%E0%A4%A'), { page: 'invalid-link' });
    assert.deepEqual(routeOf('#/credential/%'), { page: 'invalid-link' });
  });

  it('maps the other pages', () => {
    assert.deepEqual(routeOf(''), { page: 'overview' });
    assert.deepEqual(routeOf('#/'), { page: 'overview' });
    assert.deepEqual(routeOf('#/alerts'), { page: 'alerts' });
    assert.deepEqual(routeOf('#/schedule'), { page: 'schedule' });
    assert.deepEqual(routeOf('#/audit'), { page: 'audit' });
  });
});
