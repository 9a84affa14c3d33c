/**
 * A stand-in for OpenWatch's `api` client (frontend/src/services/api.ts there), for this package's tests only.
 *
 * The Backups section imports `api` from '../services/api'. Copied into OpenWatch's frontend/src/backups/, that
 * path is OpenWatch's own client, which holds the admin's login; this file is not copied. It keeps that client's
 * interface: get/post return `response.data`; a failed call rejects with an Error carrying `status` and
 * `response` (so `error.response.data.detail` is the backend's one-line message).
 *
 * Login, as OpenWatch's frontend holds it: the access token in localStorage `auth_token`, sent as a Bearer
 * token; on a 401 one refresh through POST /api/auth/refresh with `{"refresh_token"}` (localStorage
 * `refresh_token`), then the request once more with the new token. Requests failing while a refresh is under
 * way wait for that same refresh (one refresh, however many 401s).
 */
import axios, { type AxiosError, type AxiosRequestConfig, type InternalAxiosRequestConfig } from 'axios';

export const StorageKeys = {
  AUTH_TOKEN: 'auth_token',
  REFRESH_TOKEN: 'refresh_token',
  SESSION_EXPIRY: 'session_expiry',
} as const;

export const REFRESH_URL = '/api/auth/refresh';

export interface ApiError extends Error {
  status?: number;
  response?: { status: number; data: unknown };
}

interface RetriedConfig extends InternalAxiosRequestConfig {
  _retried?: boolean;
}

interface RefreshAnswer {
  access_token?: string;
  expires_in?: number;
}

function toApiError(error: AxiosError): ApiError {
  if (!error.response) {
    return Object.assign(new Error('Unable to connect to the server. Please check your network connection.'), {
      status: undefined,
    });
  }
  return Object.assign(new Error(error.message || 'API request failed'), {
    status: error.response.status,
    response: { status: error.response.status, data: error.response.data },
  });
}

class ApiClient {
  private instance = axios.create({ baseURL: '', timeout: 30000, withCredentials: true });
  private refreshing: Promise<string | null> | null = null;

  constructor() {
    this.instance.interceptors.request.use((config) => {
      const token = localStorage.getItem(StorageKeys.AUTH_TOKEN);
      if (token) {
        config.headers.Authorization = `Bearer ${token}`;
      }
      config.headers['X-Requested-With'] = 'XMLHttpRequest';
      return config;
    });
    this.instance.interceptors.response.use(
      (response) => response,
      async (error: AxiosError) => {
        const config = error.config as RetriedConfig | undefined;
        if (error.response?.status === 401 && config && !config._retried) {
          config._retried = true; // one retry: a second 401 is the answer
          const token = await this.refresh();
          if (token) {
            config.headers.Authorization = `Bearer ${token}`;
            return this.instance.request(config);
          }
        }
        return Promise.reject(toApiError(error));
      }
    );
  }

  /** The new access token, or null when there is no refresh token or the server refused it. */
  private refresh(): Promise<string | null> {
    if (!this.refreshing) {
      this.refreshing = this.refreshOnce().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async refreshOnce(): Promise<string | null> {
    const refreshToken = localStorage.getItem(StorageKeys.REFRESH_TOKEN);
    if (!refreshToken) {
      return null;
    }
    try {
      // A bare axios call: its own 401 must not start another refresh.
      const { data } = await axios.post<RefreshAnswer>(REFRESH_URL, { refresh_token: refreshToken });
      if (!data.access_token) {
        return null;
      }
      localStorage.setItem(StorageKeys.AUTH_TOKEN, data.access_token);
      if (data.expires_in) {
        localStorage.setItem(StorageKeys.SESSION_EXPIRY, String(Date.now() + data.expires_in * 1000));
      }
      return data.access_token;
    } catch {
      localStorage.removeItem(StorageKeys.AUTH_TOKEN); // as OpenWatch: a refused refresh ends the session
      return null;
    }
  }

  async get<T = unknown>(url: string, config?: AxiosRequestConfig): Promise<T> {
    return (await this.instance.get<T>(url, config)).data;
  }

  async post<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<T> {
    return (await this.instance.post<T>(url, data, config)).data;
  }

  async put<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<T> {
    return (await this.instance.put<T>(url, data, config)).data;
  }
}

export const api = new ApiClient();
